// A job's start notice: the first thing a job's agent does is tell the hook that submitted it
// "your job runs", over one TCP connection to a port the hook listens on while it waits (its
// address and a token travel in the job's environment as NSH_START_NOTICE=TOKEN@HOST:PORT).
// Schedulers cannot push a job's start; polling slurmctld every 100 ms for every waiting build
// spends the site's rate budget (Slurm's own per-user limit is 2 requests per second) faster than
// it refills, and then a build learns its start a whole refill late. The notice is only a hint:
// the hook then asks the scheduler at once, and it is the scheduler's answer (state, node) that
// counts. So a forged notice costs one query, a lost one (a firewall between node and login host)
// costs the poll's delay, and the token only keeps strangers' connections from costing queries.
import { timingSafeEqual } from "node:crypto";

export const START_NOTICE_ENV = "NSH_START_NOTICE";

export interface NoticeTarget {
  token: string;
  host: string;
  port: number;
}

/** Pure: the environment value naming where the notice goes. */
export const formatNoticeTarget = (t: NoticeTarget): string => `${t.token}@${t.host}:${t.port}`;

/** Pure: the target from the environment value; undefined when missing or malformed (no notice then). */
export function parseNoticeTarget(text: string | undefined): NoticeTarget | undefined {
  const m = /^([0-9a-f]{16,128})@(.+):(\d{1,5})$/.exec(text?.trim() ?? "");
  if (!m) return undefined;
  const port = Number(m[3]);
  const host = m[2]!.replace(/^\[(.*)\]$/, "$1");
  if (port < 1 || port > 65535 || !/^[A-Za-z0-9.:%_-]+$/.test(host)) return undefined;
  return { token: m[1]!, host, port };
}

/** Pure: the line an agent sends. */
export const noticeLine = (token: string): string => `nsh-started ${token}\n`;

/** Pure: does a received line carry this token? Compared in constant time. */
export function noticeMatches(line: string, token: string): boolean {
  const m = /^nsh-started ([0-9a-f]+)\r?\n?$/.exec(line);
  if (!m || m[1]!.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(m[1]!), Buffer.from(token));
}

/**
 * The agent's side: sends the notice and forgets it. Never throws and never holds the agent up:
 * a hook that is gone or unreachable only means it learns the start by polling.
 */
export function sendStartNotice(env: Record<string, string | undefined>, timeoutMs = 3000): void {
  const target = parseNoticeTarget(env[START_NOTICE_ENV]);
  if (!target) return;
  const line = noticeLine(target.token);
  let timer: ReturnType<typeof setTimeout> | undefined;
  Bun.connect({
    hostname: target.host,
    port: target.port,
    socket: {
      open(s) {
        s.end(line);
      },
      data() {},
      close() {
        clearTimeout(timer);
      },
      error() {},
      connectError() {
        clearTimeout(timer);
      },
    },
  })
    .then((s) => {
      timer = setTimeout(() => s.terminate(), timeoutMs);
      timer.unref?.();
    })
    .catch(() => {});
}
