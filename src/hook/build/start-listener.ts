// The hook's side of a job's start notice (../../agent/start-notice.ts): a TCP port, open only while
// the hook waits for its job to run, on which the job's agent says "started". The port takes a
// line of at most a few dozen bytes per connection and closes it; only a line with the hook's token
// counts, and it only makes the hook ask the scheduler now instead of at its next poll.
import type { Socket, TCPSocketListener } from "bun";
import { randomBytes } from "node:crypto";
import os from "node:os";
import { formatNoticeTarget, noticeMatches } from "../../agent/start-notice.ts";

export interface StartListener {
  /** the value of the job's NSH_START_NOTICE */
  readonly target: string;
  /** resolves at the first notice carrying this hook's token */
  readonly arrived: Promise<void>;
  close(): void;
}

const MAX_LINE = 200;

/** Pure: why start-notice-host cannot be told to a job (undefined: it can). */
export function badNoticeHost(host: string): string | undefined {
  if (/^[A-Za-z0-9.:%_-]+$/.test(host)) return undefined;
  return `nsh.conf: start-notice-host '${host}' is not a host name or address; ` +
    "jobs' starts are learned by polling only";
}

/**
 * Listens on all addresses at a free port; `host` is the name the job is told to reach this
 * machine by ("auto": this machine's host name). Undefined when no port could be opened or the
 * name is not one (warned): the hook then learns the start by polling, as without the notice.
 */
export function listenForStart(host: string, warn: (msg: string) => void): StartListener | undefined {
  const name = host === "auto" ? os.hostname() : host;
  const bad = badNoticeHost(name);
  if (bad) {
    warn(bad);
    return undefined;
  }
  const token = randomBytes(16).toString("hex");
  const arrived = Promise.withResolvers<void>();
  let listener: TCPSocketListener<{ got: string }> | undefined;
  try {
    listener = Bun.listen<{ got: string }>({
      hostname: "0.0.0.0",
      port: 0,
      socket: {
        open(s) {
          s.data = { got: "" };
          s.timeout(5);
        },
        data(s: Socket<{ got: string }>, chunk) {
          s.data.got += chunk.toString("latin1");
          const nl = s.data.got.indexOf("\n");
          if (nl < 0 && s.data.got.length < MAX_LINE) return;
          if (nl >= 0 && noticeMatches(s.data.got.slice(0, nl + 1), token)) arrived.resolve();
          s.end();
        },
        timeout(s) {
          s.end();
        },
        error() {},
      },
    });
  } catch {
    return undefined;
  }
  const open = listener;
  return {
    target: formatNoticeTarget({ token, host: name, port: open.port }),
    arrived: arrived.promise,
    close: () => open.stop(true),
  };
}
