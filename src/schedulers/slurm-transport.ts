// How nsh reaches slurmrestd: the base URL (http or https), whether a token would cross the network
// in the clear, and what a TLS failure means to the user. Pure but for reading the CA file and
// exchange(), one HTTP request and its failure in the user's words; slurm-rest.ts reads the reply.
import { readFileSync } from "node:fs";
import { SchedulerError } from "./scheduler.ts";

export type ApiScheme = "http" | "https";

/** `scheme://host:port`, IPv6 literals in brackets. */
export function slurmApiBaseUrl(scheme: ApiScheme, host: string, port: number): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${scheme}://${h}:${port}`;
}

/**
 * True for names that never leave the machine: localhost (and *.localhost), 127.0.0.0/8, ::1.
 * Decided by the name alone: a name that happens to resolve to a loopback address is not trusted.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (/^127(\.\d{1,3}){3}$/.test(h)) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  return /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/** The warning for a JWT about to be sent without TLS to another machine; null when there is none to give. */
export function cleartextTokenWarning(scheme: ApiScheme, host: string, port: number): string | null {
  if (scheme === "https" || isLoopbackHost(host)) return null;
  return (
    `the Slurm JWT goes to slurmrestd at ${host}:${port} over plain http: anyone on the network between can read ` +
    "it and act as you on the cluster; set slurm-api-scheme = https (and slurm-api-ca-file) behind a TLS proxy"
  );
}

/** Error codes (Bun's fetch, from BoringSSL) that mean the server's certificate was not accepted. */
export function isCertificateError(code: string | undefined): boolean {
  return !!code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME|ISSUER/i.test(code);
}

/** What to tell the user when the certificate of slurmrestd (or its TLS proxy) was refused. */
export function certificateMessage(where: string, code: string, caFile: string): string {
  const host = where.replace(/:\d+$/, "");
  const fix = caFile
    ? `check that ${caFile} (slurm-api-ca-file) holds the CA that signed it and that the certificate names ${host}`
    : "set slurm-api-ca-file to the PEM file of the CA that signed it";
  return `the TLS certificate of slurmrestd at ${where} was not accepted (${code}); nothing was sent: ${fix}`;
}

/** True when `text` holds at least one PEM certificate (Bun's fetch fails obscurely on anything else). */
export const holdsPemCertificate = (text: string): boolean =>
  /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(text);

/** The CA file's PEM text; a config error naming the setting when it cannot be read or holds no certificate. */
export function readCaFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new SchedulerError("config", `slurm-api-ca-file ${file}: cannot read it (${code})`);
  }
  if (!holdsPemCertificate(text)) {
    throw new SchedulerError("config", `slurm-api-ca-file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

export interface HttpTarget {
  fetchFn: (url: string, init: RequestInit & { tls?: { ca: string } }) => Promise<Response>;
  baseUrl: string;
  /** host:port, as messages name it */
  where: string;
  scheme: ApiScheme;
  caFile: string;
}

export interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: object | undefined;
  timeoutMs: number;
  ca?: string;
}

/** One request: the response and its text, or why there is none (timeout, certificate, unreachable). */
export async function exchange(
  t: HttpTarget,
  r: HttpRequest,
): Promise<{ res: Response; text: string; ms: number } | { kind: "timeout" | "tls" | "unreachable"; message: string }> {
  const t0 = performance.now();
  try {
    const res = await t.fetchFn(`${t.baseUrl}${r.path}`, {
      method: r.method,
      headers: r.headers,
      body: r.body ? JSON.stringify(r.body) : undefined,
      signal: AbortSignal.timeout(r.timeoutMs),
      ...(r.ca ? { tls: { ca: r.ca } } : {}),
    });
    const text = await res.text();
    return { res, text, ms: performance.now() - t0 };
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string };
    if (err.name === "TimeoutError" || err.name === "AbortError") {
      return { kind: "timeout", message: `slurmrestd at ${t.where} did not answer ${r.method} ${r.path} within ${r.timeoutMs} ms` };
    }
    if (t.scheme === "https" && isCertificateError(err.code)) return { kind: "tls", message: certificateMessage(t.where, err.code!, t.caFile) };
    return { kind: "unreachable", message: `slurmrestd not reachable at ${t.where} (${err.code ?? err.message ?? String(e)})` };
  }
}
