// Pure: what slurmrestd's replies mean where Slurm releases differ (measured on 22.05.8, 24.11.5
// and 26.05.5; ../shared/reference/versions.md):
//   - ping: 22.05 answers a rejected token with HTTP 500; 24.11 and 26.05 with HTTP 200 and the
//     controller marked DOWN (v0.0.41: `pinged`), not responding (v0.0.44) or with a status text
//     (v0.0.45: "Protocol authentication error"). A 200 ping alone proves nothing about the token.
//   - an authenticated request that costs slurmctld nothing: GET /jobs?update_time=<future> answers
//     304 (22.05) or 200 with a "No job changes" warning (24.11+) for an accepted token, and 500
//     (22.05) or 511 "Protocol authentication error" (24.11+) for a rejected one.
//   - an unknown job: HTTP 500 with error 2017 on 22.05, HTTP 404 with error 2017 on 24.11+.
//   - DELETE /job/{id}: 22.05 puts errors in `errors`; 24.11+ answer 200 and put each job's error in
//     `status[].error` (2017 unknown job, 2021 already done).
//   - a job cancelled while pending reports exit_code SUCCESS / 0 on 24.11+ (cancelledExit, slurm-rest-shapes.ts).
import type { SlurmApiError } from "./slurm-rest-shapes.ts";
import { parseErrors } from "./slurm-rest-shapes.ts";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export const INVALID_JOB_ID = 2017; // ESLURM_INVALID_JOB_ID
export const ALREADY_DONE = 2021; // ESLURM_ALREADY_DONE
export const AUTH_ERROR = 1007; // SLURM_PROTOCOL_AUTHENTICATION_ERROR

/** What a ping with HTTP 200 says about the controller: up, or down (and why, when v0.0.45+ says). */
export type PingVerdict = { up: true } | { up: false; why: string };

/** pings[] of any version: `ping`/`status` (≤ v0.0.38), `pinged` (v0.0.39+), `responding` (v0.0.42+),
 * `status` text (v0.0.45). */
export function pingVerdict(json: unknown): PingVerdict {
  const pings = isObj(json) && Array.isArray(json.pings) ? json.pings.filter(isObj) : [];
  if (pings.length === 0) return { up: true }; // nothing to go by: the ping's HTTP status decides
  const up = (p: Record<string, unknown>): boolean => {
    if (typeof p.responding === "boolean") return p.responding;
    const word = p.pinged ?? p.ping;
    if (typeof word === "string") return word.toUpperCase() === "UP";
    return typeof p.status !== "number" || p.status === 0;
  };
  if (pings.some(up)) return { up: true };
  const texts = pings.map((p) => (typeof p.status === "string" ? p.status : "")).filter((s) => s !== "");
  return { up: false, why: texts.length > 0 ? [...new Set(texts)].join("; ") : "slurmctld not responding" };
}

/** The cheap authenticated request: jobs changed after `nowSec` + 1 h (none; slurmctld sends no job). */
export const authProbePath = (version: string, nowSec: number): string =>
  `/slurm/${version}/jobs?update_time=${nowSec + 3600}`;

export type AuthVerdict = { accepted: true } | { accepted: false; tokenRejected: boolean; why: string };

/** The answer to authProbePath: accepted, the token refused, or something else wrong. */
export function authProbeVerdict(status: number, json: unknown): AuthVerdict {
  if (status === 200 || status === 304) return { accepted: true };
  const errors = parseErrors(json);
  const why = `HTTP ${status}${errors.length > 0 ? `: ${errors.map((e) => e.message).join("; ")}` : ""}`;
  // 22.05 says nothing better than "Unspecified error" (-1) for a refused token on this request.
  const tokenRejected =
    status === 401 || status === 403 || status === 511 || errors.some((e) => e.code === AUTH_ERROR) ||
    (status === 500 && errors.length > 0 && errors.every((e) => e.code === -1 && /load_jobs/.test(e.source ?? "")));
  return { accepted: false, tokenRejected, why };
}

/** A GET /job/{id} answer for a job slurmctld does not know (HTTP 500 on 22.05, 404 on 24.11+, error 2017). */
export function isUnknownJobReply(status: number, json: unknown): boolean {
  if (status !== 404 && status !== 500 && status !== 200) return false;
  return parseErrors(json).some((e) => e.code === INVALID_JOB_ID);
}

/** Errors of a DELETE /job/{id} answer: `errors` plus (24.11+) each job's `status[].error`. */
export function cancelErrors(json: unknown): SlurmApiError[] {
  const own = parseErrors(json);
  const list = isObj(json) && Array.isArray(json.status) ? json.status.filter(isObj) : [];
  const perJob = list.flatMap((s) => {
    const e = isObj(s.error) ? s.error : undefined;
    const code = typeof e?.code === "number" ? e.code : 0;
    if (!e || code === 0) return [];
    const text = [e.string, e.message].find((x): x is string => typeof x === "string" && x !== "");
    const message = text ?? "unspecified error";
    return [{ message, code, source: "kill_jobs" }];
  });
  return [...own, ...perJob];
}

/** The cancel worked, or there is nothing left to cancel (job finished or unknown). */
export const cancelDone = (status: number, errors: SlurmApiError[]): boolean =>
  errors.every((e) => e.code === ALREADY_DONE || e.code === INVALID_JOB_ID) && (status === 200 || errors.length > 0);

/** Pure: why slurmrestd or slurmctld refused a request, for the authentication error. */
export function refusedTokenWhy(status: number, errors: { message: string }[]): string {
  const texts = errors.map((e) => e.message).join("; ");
  if (status === 401 || status === 403 || status === 511) return `slurmrestd answered HTTP ${status}${texts ? ` (${texts})` : ""}`;
  return `slurmctld refused the request (HTTP ${status}: ${texts || "no error text"}); ` +
    "slurmrestd passes the token on unchecked, so a wrong, expired or foreign token looks like this";
}

/** Pure: the key of a hook's proof that a token works with a server (a hash: the token itself is never stored). */
export const proofKeyOf = (baseUrl: string, user: string, token: string): string =>
  `${baseUrl} ${user} ${new Bun.CryptoHasher("sha256").update(token).digest("hex").slice(0, 24)}`;
