// For the polite-* tests: an HTTP proxy in front of the lab's slurmrestd that logs every request
// (method, kind, time) and can refuse submits with Slurm's own refusal reply, and the check that
// a request log stays within a token-bucket budget.
import type { ClusterLab } from "../lab/cluster.ts";

/** ping reaches slurmctld (slurm_ping); other (API discovery) is slurmrestd's alone */
export type RequestKind = "submit" | "status-list" | "status-one" | "cancel" | "ping" | "other";
export interface Seen {
  kind: RequestKind;
  path: string;
  at: number;
}

/** Which request a path is (slurmrestd's v0.0.3x/4x paths). */
export function kindOf(method: string, path: string): RequestKind {
  if (method === "POST" && /\/job\/submit$/.test(path)) return "submit";
  if (method === "GET" && /\/jobs\/?$/.test(path)) return "status-list";
  if (method === "GET" && /\/job\/\d+$/.test(path)) return "status-one";
  if (method === "DELETE") return "cancel";
  if (method === "GET" && /\/ping\/?$/.test(path)) return "ping";
  return "other";
}

/**
 * The largest overdraft of a token bucket (`burst`, `perSecond`) that served the requests at
 * `times` (ms, ascending): 0 when the log is within the budget.
 */
export function overdraft(times: readonly number[], burst: number, perSecond: number): number {
  let tokens = burst;
  let last = times[0] ?? 0;
  let worst = 0;
  for (const t of times) {
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * perSecond);
    last = t;
    tokens -= 1;
    worst = Math.max(worst, -tokens);
  }
  return worst;
}

export interface RefusingProxy {
  port: number;
  seen: Seen[];
  /** submits answered with a refusal */
  refused: number;
  stop(): void;
}

/**
 * Slurm's reply to a refused submit, made by slurmrestd itself: the submit is forwarded with a
 * partition that does not exist, and the error slurmctld gave (ESLURM_INVALID_PARTITION_NAME,
 * 2000) is replaced by `refusal` (Slurm's text and number of the error to inject).
 */
async function realRefusal(upstream: string, path: string, req: Request, body: string, refusal: Refusal) {
  const json = JSON.parse(body) as { job?: Record<string, unknown> };
  (json.job ?? (json as Record<string, unknown>)).partition = "nsh-no-such-partition";
  const res = await fetch(`${upstream}${path}`, { method: "POST", headers: req.headers, body: JSON.stringify(json) });
  const text = (await res.text())
    .replace(/Invalid partition name specified/g, refusal.text)
    .replace(/\b2000\b/g, String(refusal.errno));
  return new Response(text, { status: res.status, headers: { "content-type": "application/json" } });
}

/** Slurm's text and number of an error */
export interface Refusal {
  text: string;
  errno: number;
}

/** `refuse`: the first `first` submits get the refusals in turn. */
export function startProxy(lab: ClusterLab, refuse?: { first: number; refusals: Refusal[] }): RefusingProxy {
  const upstream = `http://127.0.0.1:${lab.slurm.restPort}`;
  const p: RefusingProxy = { port: 0, seen: [], refused: 0, stop: () => server.stop(true) };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const kind = kindOf(req.method, url.pathname);
      p.seen.push({ kind, path: url.pathname, at: Date.now() });
      const body = req.method === "POST" ? await req.text() : undefined;
      if (kind === "submit" && refuse && p.refused < refuse.first) {
        const r = refuse.refusals[p.refused++ % refuse.refusals.length]!;
        return realRefusal(upstream, url.pathname, req, body!, r);
      }
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  p.port = server.port!;
  return p;
}
