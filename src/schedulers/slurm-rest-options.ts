// Options and results of the slurmrestd client (slurm-rest.ts), apart so the runner stays readable.
import type { ApiScheme } from "./slurm-transport.ts";
import type { JsonObject } from "./scheduler.ts";
import type { ApiVersion } from "./slurm-rest-shapes.ts";

/** Bun's fetch init: RequestInit plus its TLS options (the CA to check the server against). */
export type FetchInit = RequestInit & { tls?: { ca?: string } };
export type FetchLike = (url: string, init: FetchInit) => Promise<Response>;

export interface SlurmRestOptions {
  host: string;
  port: number;
  /** "http" (default) or "https"; over https the server's certificate is always checked */
  scheme?: ApiScheme;
  /** PEM file of the CA(s) to check slurmrestd's certificate against, instead of the system's */
  caFile?: string;
  token: string;
  /** where the token came from, for messages ("slurm-jwt-token", "SLURM_JWT", …) */
  tokenSource?: string;
  /** what is wrong with how the token is kept (a token file others may read), for `nsh doctor` */
  tokenWarnings?: string[];
  /** X-SLURM-USER-NAME (22.05 needs it); default the token's user (`sun`), else the current user */
  user?: string;
  /** "auto" (default): the newest version both sides know; or one version to force */
  apiVersion?: string;
  /** slurm-extra-submission-params: merged over each job's own extra params, so it wins */
  extraParams?: JsonObject;
  /** bound for each HTTP request; default 20 s, above Slurm's MessageTimeout (10 s) so Slurm's own error arrives first */
  requestTimeoutMs?: number;
  fetch?: FetchLike;
  /** one line per request (method, path, status, ms); never headers */
  log?: (line: string) => void;
  /**
   * The version an earlier negotiation with this server chose (the hook keeps it in its state
   * directory): with it, negotiating is one ping instead of fetching the OpenAPI document first.
   */
  rememberedVersion?: { get(): string | undefined; set(v: ApiVersion): void; forget(): void };
  /**
   * That a hook's ping proved a token with this server a moment ago (keyed by server, user and a hash
   * of the token): the next hooks then skip their ping, which saves a wide graph a request per build.
   */
  proof?: { recent(key: string): boolean; record(key: string): void; forget(key: string): void };
}

export interface Reply {
  status: number;
  json: unknown;
  text: string;
  ms: number;
}

export interface Negotiated {
  version: ApiVersion;
  /** versions the server named (all of them via /openapi/v3; only the one found when probing pings) */
  served: string[];
  via: "openapi" | "ping-probe" | "forced" | "remembered" | "proven";
  release: string | null;
  discoveryMs: number;
  pingMs: number;
}
