// Running an actual build hook (Nix's own build-remote, or a user's) as our child, with Nix's
// plumbing (nix-protocols.md §1.2, §1.9): stdout and stderr are one pipe we read line by line, fds 4
// and 5 are Nix's log pipe inherited as they are, stdin carries the protocol. Shared by nix-sigstop's
// relay and nsh's fallback.
// No node:fs or node:path here: the hook loads this module before its first answer (sys/file.ts).
import type { Subprocess } from "bun";
import { fdIsOpen, isPipeLike, readLink, realPath, writeAllSync } from "../sys/file.ts";
import { builtinModule, libc, pipe } from "../sys/libc.ts";
import { basename, dirname, join } from "../sys/posix-path.ts";
import { ByteLines } from "../util/lines.ts";
import { type Settings, isCapnpHookLaunch, parseReplyLine, readSettings } from "./hook-protocol.ts";
import { type ByteSource, WireReader, concat } from "./wire.ts";

export const lineText = (b: Uint8Array) => new TextDecoder().decode(b).replace(/\n$/, "");

/** Whether this process was started as Lix ≥ 2.94 starts a build hook (isCapnpHookLaunch on fds 0 and 1). */
export function launchedOverCapnp(): boolean {
  // Nix and Lix ≤ 2.93 give a pipe on stdin: told by lseek alone, so node:fs is loaded only otherwise.
  if (isPipeLike(0)) return false;
  const fs = builtinModule<typeof import("node:fs")>("node:fs");
  const look = (fd: number) => {
    try {
      return fs.fstatSync(fd);
    } catch {
      return undefined;
    }
  };
  const [i, o] = [look(0), look(1)];
  return isCapnpHookLaunch({ stdin: { charDevice: !!i?.isCharacterDevice(), rdev: i?.rdev ?? -1 }, stdout: { socket: !!o?.isSocket() } });
}

export const fdOpen = fdIsOpen;

/** Writes all of `data` to a file descriptor, waiting out a non-blocking pipe that is full. */
export const writeAll = writeAllSync;

/** The directory of the Nix that runs us (our parent: the daemon or the building client). */
export function nixBinDir(ppid = process.ppid): string {
  try {
    const exe = readLink(`/proc/${ppid}/exe`);
    if (/^nix/.test(basename(exe))) return dirname(exe);
  } catch {}
  const nix = Bun.which("nix");
  return nix ? dirname(realPath(nix)) : "/usr/bin";
}

/**
 * Nix's default hook given the directory of the nix binary: 2.8 ships `libexec/nix/build-remote`
 * (argv[0]'s basename picks the personality); 2.18 and later run `nix __build-remote`.
 */
export function defaultHook(binDir: string, exists: (p: string) => boolean): string[] {
  const legacy = join(dirname(binDir), "libexec", "nix", "build-remote");
  return exists(legacy) ? [legacy] : [join(binDir, "nix"), "__build-remote"];
}

/**
 * Reads the settings blob and keeps its exact bytes, so a child hook can be fed a byte-exact copy
 * (Lix 2.92–2.93 send only some settings; whatever came is what the child gets). Undefined when
 * the stream ends before its first byte.
 */
/** `only`: keep that setting alone (see parseSettings). */
export async function readSettingsExact(
  source: ByteSource,
  only?: string,
): Promise<{ reader: WireReader; settings: Settings; blob: Uint8Array } | undefined> {
  const seen: Uint8Array[] = [];
  let recording = true;
  const tee = {
    async read(): Promise<{ done: boolean; value?: Uint8Array }> {
      const r = "read" in source ? await source.read() : await source.next();
      if (recording && !r.done && r.value) seen.push(r.value);
      return { done: r.done ?? false, value: r.value };
    },
  };
  const reader = new WireReader(tee);
  if (await reader.atEnd()) return undefined;
  const settings = await readSettings(reader, only);
  recording = false;
  return { reader, settings, blob: concat(seen).slice(0, reader.consumed) };
}

export type ChildReply = { kind: "reply"; word: string; line: Uint8Array } | { kind: "eof"; code: number };

export interface HookChildOptions {
  /** program and arguments; the verbosity is appended (it is always last, §1.2) */
  hook: string[];
  verbosity: number;
  /** pass Nix's fds 4 and 5 on (default: those of them that are open) */
  logFds?: boolean;
  env?: Record<string, string | undefined>;
}

export class HookChild {
  readonly name: string;
  private readonly proc: Subprocess<"pipe", number, number>;
  private readonly lines: ByteLines;
  readonly exited: Promise<number>;
  private ended = false;

  constructor(opts: HookChildOptions) {
    this.name = opts.hook.join(" ");
    const logFd = (fd: number) => (opts.logFds !== false && fdOpen(fd) ? fd : "ignore");
    // Like Nix: the hook's stdout and stderr are one pipe; fds 4 and 5 are Nix's own log pipe.
    const [outR, outW] = pipe();
    try {
      this.proc = Bun.spawn([...opts.hook, String(opts.verbosity)], {
        stdio: ["pipe", outW, outW, "ignore", logFd(4), logFd(5)],
        cwd: "/",
        env: (opts.env ?? process.env) as Record<string, string>,
      }) as Subprocess<"pipe", number, number>;
    } finally {
      libc().close(outW);
    }
    this.lines = new ByteLines(Bun.file(outR).stream());
    this.exited = this.proc.exited; // 128 + n when signal n ended it
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** A hook that died takes its pipe with it: callers notice the missing reply instead. */
  async send(bytes: Uint8Array): Promise<void> {
    if (this.ended) return;
    try {
      this.proc.stdin.write(bytes);
      await this.proc.stdin.flush();
    } catch {}
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.proc.stdin.end();
    } catch {}
  }

  nextLine(): Promise<Uint8Array | undefined> {
    return this.lines.next();
  }

  /** Reads up to the `# …` reply to a `try`; every other line goes to `other` as it comes. */
  async reply(other: (line: Uint8Array) => void): Promise<ChildReply> {
    for (;;) {
      const line = await this.lines.next();
      if (!line) return { kind: "eof", code: await this.exited };
      const word = parseReplyLine(lineText(line));
      if (word === undefined) other(line);
      else return { kind: "reply", word, line };
    }
  }

  /** After the build was handed over: every line until EOF to `out`, then the exit status. */
  async relayToEnd(out: (line: Uint8Array) => void): Promise<number> {
    for (let l = await this.lines.next(); l; l = await this.lines.next()) out(l);
    return this.exited;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    try {
      this.proc.kill(signal);
    } catch {}
  }

  /** Closes stdin (an idle hook then exits 0); kills it if it has not gone within `graceMs`. */
  async close(graceMs = 2000): Promise<number> {
    await this.end();
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `# accept` and the machine line as one buffer: Nix reads the machine right after the reply. */
export const acceptBytes = (acceptLine: Uint8Array, machineLine: Uint8Array) => concat([acceptLine, machineLine]);
