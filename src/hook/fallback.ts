// Builds nsh declines go to Nix's own build hook (nix-protocols.md §1.9): nsh impersonates Nix
// towards a child build-remote. The child is started on the first declined `try` and kept for later
// ones; it gets a byte-exact copy of the settings blob, then each `try`. Its reply goes to Nix as it
// is, except `# decline-permanently` (no builders), which becomes `# decline` while nsh may still
// take a later build itself. When it accepts, nsh relays the machine line, the inputs and wanted
// outputs, its messages until EOF, and exits with its status; its build log reaches Nix directly on
// the inherited fd 4.
import type { NshConfig } from "../config/nsh-conf.ts";
import { HookChild, acceptBytes, defaultHook, lineText, nixBinDir } from "../nix/hook-child.ts";
import { type TryRequest, encodeAccepted, encodeTry, readAccepted } from "../nix/hook-protocol.ts";
import type { WireReader } from "../nix/wire.ts";
import { fileExists, realPath } from "../sys/file.ts";
import { dirname } from "../sys/posix-path.ts";
import { compiled } from "../util/self.ts";
import type { HookLog, Sink } from "./hook-log.ts";

/** The directory of the `nix` on PATH (symlinks resolved), if there is one. */
function pathNixDir(): string | undefined {
  const nix = Bun.which("nix");
  try {
    return nix ? dirname(realPath(nix)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The hook to fall back to: `fallback-build-hook` split like Nix ≥ 2.17 splits `build-hook`, else
 * Nix's default next to the Nix that runs us (`/proc/<nix>/exe`), else next to the `nix` on PATH.
 * The first can be gone: a daemon whose package was upgraded or collected reads "…/nix (deleted)",
 * a chroot shows the host's path. Throws, saying what was tried, when neither exists.
 */
export function fallbackHook(
  conf: Pick<NshConfig, "fallback-build-hook"> | undefined,
  binDir: () => string = nixBinDir,
  exists: (p: string) => boolean = fileExists,
  onPath: () => string | undefined = pathNixDir,
): string[] {
  const set = (conf?.["fallback-build-hook"] ?? "").split(/\s+/).filter(Boolean);
  if (set.length > 0) return set;
  const tried: string[] = [];
  for (const dir of [binDir(), onPath()]) {
    if (dir === undefined) continue;
    const hook = defaultHook(dir, exists);
    if (exists(hook[0]!)) return hook;
    if (!tried.includes(hook[0]!)) tried.push(hook[0]!);
  }
  throw new Error(
    `Nix's own build hook is not there (${tried.join(", ") || "no nix found"} does not exist; looked next to the Nix ` +
      `that started nsh and the nix on PATH); set fallback-build-hook in nsh.conf to the hook to use`,
  );
}

function isSelf(program: string): boolean {
  if (!compiled) return false;
  try {
    return realPath(program) === realPath(process.execPath);
  } catch {
    return false;
  }
}

export interface FallbackOptions {
  /** the hook's command line, or how to find it (looked up when first needed) */
  hook: string[] | (() => string[]);
  verbosity: number;
  /** the settings blob exactly as Nix sent it */
  settingsBlob: Uint8Array;
  /** our fd 2 towards Nix */
  toNix: Sink;
  log: HookLog;
  /** nsh will take nothing in this process (bad nsh.conf, no executor): pass decline-permanently on */
  neverTakes: boolean;
  /** give the child Nix's fds 4 and 5 (default true; in-process tests have none) */
  logFds?: boolean;
  env?: Record<string, string | undefined>;
  /**
   * The hook is Nix's own and the settings' `builders` are empty: it would answer
   * `# decline-permanently` before reading any `try` (nix-protocols.md §1.8), so it is not started.
   */
  noMachines?: boolean;
  /** called before a child hook is started (the runner listens for SIGTERM from then on) */
  beforeStart?: () => void;
}

/** What became of a `try` the fallback handled. */
export type FallbackResult = { kind: "answered"; reply: string } | { kind: "built"; status: number };

export class Fallback {
  private child: HookChild | undefined;
  /** Why no child is asked any more; then every `try` is declined straight away. */
  private gone: string | undefined;
  private relaying = false;
  private command: string[] | undefined;

  constructor(private readonly o: FallbackOptions) {}

  private get hook(): string[] {
    this.command ??= typeof this.o.hook === "function" ? this.o.hook() : this.o.hook;
    return this.command;
  }

  get name(): string {
    return this.hook.join(" ");
  }

  /** Answers `req` through the child; after an accept, runs the whole build and returns its status. */
  async offer(req: TryRequest, fromNix: WireReader): Promise<FallbackResult> {
    const child = this.gone ? undefined : await this.start();
    if (!child) return this.decline();
    await child.send(encodeTry(req));
    const r = await child.reply(this.o.toNix);
    if (r.kind === "eof") return this.lost(`exited (status ${r.code}) without answering for '${req.drvPath}'`);
    const { word, line } = r;
    if (word === "decline" || word === "postpone") {
      this.o.toNix(line);
      return { kind: "answered", reply: word };
    }
    if (word === "decline-permanently") {
      this.gone = "it has no machines to build on";
      this.o.log.debug(`'${this.name}' declined permanently (no builders)`);
      await this.close();
      return this.decline(line);
    }
    if (word !== "accept") return this.lost(`gave the reply '${word}', which Nix does not know`);
    const machine = await child.nextLine();
    if (!machine) return this.lost(`accepted '${req.drvPath}' but named no machine`);
    this.o.log.debug(`'${this.name}' builds '${req.drvPath}' on '${lineText(machine)}'`);
    this.relaying = true;
    this.o.toNix(acceptBytes(line, machine));
    await child.send(encodeAccepted(await readAccepted(fromNix)));
    await child.end();
    return { kind: "built", status: await child.relayToEnd(this.o.toNix) };
  }

  /** Ends an idle child (before nsh takes a build itself, or when Nix is done with us). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.relaying) return;
    this.child = undefined;
    await child.close();
  }

  /** SIGTERM from Nix: a running build gets it too (it is in our process group anyway). */
  async terminate(): Promise<void> {
    if (this.relaying) this.child?.kill("SIGTERM");
    else await this.close();
  }

  private async start(): Promise<HookChild | undefined> {
    if (this.child) return this.child;
    if (this.o.noMachines) {
      this.gone = "it has no machines to build on";
      this.o.log.debug(`no builders: Nix's own build hook would decline every build, so it is not started`);
      return undefined;
    }
    let program: string | undefined;
    try {
      [program] = this.hook;
    } catch (e) {
      this.gone = "it was not found";
      this.o.log.error(`${(e as Error).message}; declined builds are built locally if possible`);
      return undefined;
    }
    if (program && isSelf(program)) {
      this.gone = "it is nsh itself";
      this.o.log.error(`fallback-build-hook '${this.name}' is nsh itself; declined builds are built locally instead`);
      return undefined;
    }
    let child: HookChild;
    try {
      this.o.beforeStart?.();
      child = new HookChild({ hook: this.hook, verbosity: this.o.verbosity, logFds: this.o.logFds, env: this.o.env });
    } catch (e) {
      this.gone = "it cannot be started";
      this.o.log.error(`cannot start Nix's build hook '${this.name}': ${(e as Error).message}; declined builds are built locally if possible`);
      return undefined;
    }
    this.o.log.debug(`started '${this.name}' (pid ${child.pid}) for the builds nsh declines`);
    await child.send(this.o.settingsBlob);
    this.child = child;
    return child;
  }

  /** The child misbehaved: never break the build over it, let Nix build locally if it can. */
  private async lost(what: string): Promise<FallbackResult> {
    this.gone = "it failed";
    this.o.log.warn(`Nix's build hook '${this.name}' ${what}; declined builds are built locally if possible`);
    const child = this.child;
    this.child = undefined;
    child?.kill("SIGKILL");
    return this.decline();
  }

  private decline(permanently?: Uint8Array): FallbackResult {
    if (this.o.neverTakes) {
      this.o.toNix(permanently ?? "# decline-permanently\n");
      return { kind: "answered", reply: "decline-permanently" };
    }
    this.o.toNix("# decline\n");
    return { kind: "answered", reply: "decline" };
  }
}
