// Step 5: the build itself. The inputs go to the job's node (read from the local store's files
// where possible, large ones over OpenSSH), the node builds with the log streaming to Nix, and the
// outputs come home into the local store under Nix's held output locks.
import { type BuildResult, DEFAULT_BUILD_OPTIONS, basicDerivation } from "../../nix/serve-protocol.ts";
import type { ServeClient } from "../../nix/serve-client.ts";
import { copyClosure } from "../../remote/copy.ts";
import { heldLocksEnv, importEnv } from "../../remote/import-local.ts";
import { openLocalServe } from "../../remote/open-store.ts";
import { localNarReader, localStoreUri } from "../../remote/local-nar.ts";
import { buildLimits } from "../job-plan.ts";
import type { AgentSession } from "./connect.ts";
import { type BuildRun, INFO } from "./run.ts";

export async function upload(run: BuildRun, s: AgentSession): Promise<void> {
  const { ctx, record, step } = run;
  // Inputs are read from the local store's files when we can (no pipe from a local nix-store).
  const readLocalNar = localNarReader(localStoreUri(undefined, run.env));
  const log = (m: string) => ctx.log(INFO, `nsh: ${m}`);
  await step(copyClosure(s.local, { kind: "serve", client: s.remote }, ctx.inputs, { progress: s.progress, readLocalNar, log, bulk: run.bulk!.deps("to") }));
  record.mark("uploaded");
  record.phaseDone("upload");
}

/** The node builds the derivation; its result (a failure is the caller's to report). */
export async function buildInJob(run: BuildRun, s: AgentSession): Promise<BuildResult> {
  const { ctx, record, step } = run;
  const { req } = ctx;
  const limits = buildLimits(ctx.settings);
  const options = { ...DEFAULT_BUILD_OPTIONS, maxSilentTime: limits.maxSilentTime, buildTimeout: limits.buildTimeout, maxLogSize: limits.maxLogSize };
  const result = await step(s.remote.buildDerivation(req.drvPath, basicDerivation(run.plan.drv, ctx.inputs), options));
  record.phaseDone("build");
  return result;
}

/** A result Nix counts as a failed build (not built, nor already valid, nor substituted). */
export const buildFailed = (result: BuildResult): boolean => result.status > 2 && result.status !== 13;

/** The outputs the build brings home: Nix holds their locks for it. */
const outputPaths = (run: BuildRun): string[] =>
  run.ctx.wantedOutputs.map((o) => run.plan.drv.outputs.get(o)?.path).filter((p): p is string => !!p);

/**
 * The build's local serve session (what the copies ask of the local store). With Nix ≤ 2.28 it is
 * opened as the held-locks import needs it, and the outputs come home through it: one local
 * nix-store per build instead of two (each ~20 ms of CPU, more to start on a busy machine).
 */
export function openLocalSession(run: BuildRun): Promise<ServeClient> {
  return run.importMethod.catch(() => undefined).then((method) => {
    if (method !== "held-locks") return openLocalServe({ env: run.env });
    return openLocalServe({ env: heldLocksEnv(importEnv(localStoreOf(run)), outputPaths(run)) });
  });
}

const localStoreOf = (run: BuildRun) => ({ store: run.ctx.localStore ?? "local", env: run.env });

export async function download(run: BuildRun, s: AgentSession): Promise<void> {
  const { record, step } = run;
  const outputs = outputPaths(run);
  record.mark("built");
  const method = await step(run.importMethod);
  record.mark("import-method");
  const into = {
    kind: "import" as const, name: "local store", store: localStoreOf(run), method, heldLocks: outputs, client: s.local,
    // s.local came from openLocalSession: under held-locks it is the import's session.
    clientImports: true,
  };
  await step(copyClosure(s.remote, into, outputs, { progress: s.progress, bulk: run.bulk!.deps("from") }));
  record.mark("imported");
  record.phaseDone("download");
}
