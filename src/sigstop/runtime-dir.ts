// The wrapper's private runtime directory (0700): the event FIFO, the proxy socket, the hook
// script Nix runs and the JSON that tells the hook where things are. Removed at exit.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { mkfifo } from "../sys/libc.ts";
import { selfCommand } from "../util/self.ts";
import type { HookConfig } from "./hook-config.ts";

export interface RuntimeDir {
  dir: string;
  fifo: string;
  socket: string;
  hookScript: string;
  remove(): void;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export function createRuntimeDir(env: Record<string, string | undefined>): RuntimeDir {
  // Unix socket paths are limited to 107 bytes: prefer short bases.
  const base = env.XDG_RUNTIME_DIR && env.XDG_RUNTIME_DIR.length < 60 ? env.XDG_RUNTIME_DIR : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, "nix-sigstop-"));
  fs.chmodSync(dir, 0o700);
  const rd: RuntimeDir = {
    dir,
    fifo: path.join(dir, "events"),
    socket: path.join(dir, "daemon.sock"),
    hookScript: path.join(dir, "build-hook"),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  mkfifo(rd.fifo, 0o600);
  // Nix 2.8 takes one path as build hook, with no arguments: a script carries ours.
  const exec = [...selfCommand(), "__sigstop-hook", dir].map(shellQuote).join(" ");
  fs.writeFileSync(rd.hookScript, `#!/bin/sh\nexec ${exec} "$@"\n`, { mode: 0o700 });
  return rd;
}

export function writeHookConfig(rd: RuntimeDir, cfg: HookConfig): void {
  fs.writeFileSync(path.join(rd.dir, "hook.json"), JSON.stringify(cfg), { mode: 0o600 });
}
