// Runs the hook's main loop in-process, playing Nix: the bytes Nix would write to the hook's stdin,
// and a record of every write the hook makes towards Nix (one entry per write(2)).
import fs from "node:fs";
import path from "node:path";
import { type LoadedNshConfig, type NshConfig, defaultNshConfig } from "../../src/config/nsh-conf.ts";
import type { BuildExecutor, SchedulerKind } from "../../src/hook/executor.ts";
import { type RunHookOptions, runHook } from "../../src/hook/runner.ts";
import { type AcceptedBuild, type TryRequest, encodeAccepted, encodeTry } from "../../src/nix/hook-protocol.ts";
import { concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

export const DIST_NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");

/** A settings blob; records are written as given (duplicates and order kept). */
export function settingsBlob(records: [string, string][]): Uint8Array {
  return concat([...records.flatMap(([k, v]) => [encodeU64(1), encodeString(k), encodeString(v)]), encodeU64(0)]);
}

export const tryReq = (drvPath: string, system = "x86_64-linux", requiredFeatures: string[] = [], amWilling = true): TryRequest => ({ amWilling, system, drvPath, requiredFeatures });

/** A stdin that hands out `chunks`, then either ends or (open: true) blocks until `end()`. */
export function nixStdin(chunks: Uint8Array[], open = false) {
  let i = 0;
  let release: (() => void) | undefined;
  const ended = new Promise<void>((r) => (release = r));
  return {
    source: {
      async read(): Promise<{ done: boolean; value?: Uint8Array }> {
        if (i < chunks.length) return { done: false, value: chunks[i++] };
        if (open) await ended;
        return { done: true };
      },
    },
    end: () => release?.(),
  };
}

/** A loaded nsh.conf: the defaults plus what a hook needs to submit (readiness.ts), then `over`. */
export function confLoader(over: Partial<NshConfig> = {}, errors: LoadedNshConfig["errors"] = [], files = ["/test/nsh.conf"]): () => LoadedNshConfig {
  const ready: Partial<NshConfig> = { "slurm-state-dir": "/cluster/nsh", "slurm-jwt-token": "test-jwt" };
  return () => ({ config: { ...defaultNshConfig(), ...ready, ...over }, origins: new Map(), files, warnings: [], errors });
}

export interface NixMsg {
  action: string;
  level: number;
  msg: string;
}

export interface Recorded {
  code: number;
  /** each write towards Nix (fd 2), decoded */
  writes: string[];
  buildLog: string;
  /** the `# …` replies in order */
  replies: string[];
  messages: NixMsg[];
}

export interface InProcessRun {
  chunks: Uint8Array[];
  conf?: () => LoadedNshConfig;
  executors?: Partial<Record<SchedulerKind, BuildExecutor | undefined>>;
  verbosity?: number;
  fallbackHook?: string[];
  env?: Record<string, string | undefined>;
  terminate?: AbortSignal;
  /** keep stdin open after the chunks (Nix still there) */
  open?: { end(): void; source: ReturnType<typeof nixStdin>["source"] };
}

export async function runInProcess(o: InProcessRun): Promise<Recorded> {
  const writes: string[] = [];
  let buildLog = "";
  const dec = (b: Uint8Array | string) => (typeof b === "string" ? b : new TextDecoder().decode(b));
  const opts: RunHookOptions = {
    argv: ["nsh", String(o.verbosity ?? 3)],
    io: {
      stdin: o.open?.source ?? nixStdin(o.chunks).source,
      toNix: (b) => writes.push(dec(b)),
      toBuildLog: (b) => (buildLog += dec(b)),
      logFds: false,
    },
    env: o.env ?? process.env,
    loadConf: o.conf ?? confLoader(),
    executors: o.executors ?? {},
    fallbackHook: o.fallbackHook,
    terminate: o.terminate,
  };
  const code = await runHook(opts);
  const lines = writes.join("").split("\n").filter(Boolean);
  return {
    code,
    writes,
    buildLog,
    replies: lines.filter((l) => l.startsWith("# ")),
    messages: lines.filter((l) => l.startsWith("@nix ")).map((l) => JSON.parse(l.slice(5)) as NixMsg),
  };
}

export const request = (req: TryRequest, accepted?: AcceptedBuild) => concat([encodeTry(req), ...(accepted ? [encodeAccepted(accepted)] : [])]);

/** Every `@nix` line must be a complete, well-typed msg: Nix 2.8 does not survive anything else. */
export function wellTyped(m: NixMsg): boolean {
  return m.action === "msg" && Number.isInteger(m.level) && m.level >= 0 && m.level <= 7 && typeof m.msg === "string" && Object.keys(m).length === 3;
}

/** Children of this process whose command line mentions `needle`. */
export function childrenMatching(needle: string, pid = process.pid): number[] {
  const out: number[] = [];
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    let kids: string[] = [];
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    } catch {}
    for (const k of kids) {
      try {
        const cmd = fs.readFileSync(`/proc/${k}/cmdline`, "utf8");
        const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${k}/status`, "utf8"))?.[1];
        if (cmd.includes(needle) && state !== "Z") out.push(Number(k));
      } catch {}
    }
  }
  return out;
}
