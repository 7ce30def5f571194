// `nsh doctor`: checks what a build through nsh needs, in the order a build needs it, and says
// what to fix: the config, the JWT, slurmrestd and its API version, ssh to the login host, the
// cluster state directory, and Nix and the store on the remote side.
import fs from "node:fs";
import os from "node:os";
import { defineCommand } from "citty";
import { loadNixConf, nixConfDir, parseNixConf } from "../config/nixconf.ts";
import { loadNshConf, nshConfFiles } from "../config/nsh-conf.ts";
import { missingSetup } from "../hook/readiness.ts";
import { parseDestination } from "../remote/destination.ts";
import { openRemoteServe } from "../remote/open-store.ts";
import { SshPool, shellQuote } from "../remote/ssh.ts";
import { sshPoolOptions } from "../remote/ssh-options.ts";
import { createScheduler, loginHostOf, schedulerModule } from "../schedulers/registry.ts";
import { doctorChecks } from "../schedulers/scheduler.ts";
import { parseNixVersion } from "../nix/version.ts";
import { type NixHookFacts, nixHookChecks } from "./doctor-nix.ts";

type Check = { name: string; ok: boolean; detail: string };

function readable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** What decides whether Nix runs nsh as its build hook: the local Nix, nix.conf, the user (doctor-nix.ts). */
function nixHookFacts(env: Record<string, string | undefined> = process.env): NixHookFacts {
  const out = (argv: string[]): string => {
    try {
      const r = Bun.spawnSync(argv, { env: env as Record<string, string>, stdout: "pipe", stderr: "ignore" });
      return r.exitCode === 0 ? r.stdout.toString() : "";
    } catch {
      return "";
    }
  };
  let version: NixHookFacts["version"];
  try {
    version = parseNixVersion(out(["nix-store", "--version"]));
  } catch {
    version = undefined;
  }
  const systemFile = `${nixConfDir(env)}/nix.conf`;
  const read = (f: string) => (readable(f) ? fs.readFileSync(f, "utf8") : undefined);
  const system = parseNixConf(read(systemFile) ?? "", systemFile, read).settings;
  const all = loadNixConf(env).settings;
  const sysHook = system.get("build-hook");
  const userHook = all.get("build-hook");
  const user = out(["id", "-un"]).trim() || os.userInfo().username; // Bun's userInfo may say "unknown"
  const remote = env.NIX_REMOTE ?? all.get("store")?.value ?? "";
  return {
    version,
    systemHook: sysHook ? { value: sysHook.value, file: sysHook.file } : undefined,
    userHook: userHook && userHook.file !== sysHook?.file ? { value: userHook.value, file: userHook.file } : undefined,
    // "auto" is the daemon for anyone but root (who may write the store itself).
    viaDaemon: remote === "daemon" || remote.startsWith("unix://") || (["", "auto"].includes(remote) && process.getuid?.() !== 0),
    user,
    groups: out(["id", "-Gn"]).trim().split(/\s+/).filter(Boolean),
    trustedUsers: (system.get("trusted-users")?.value ?? "root").split(/\s+/).filter(Boolean),
    nshPath: process.execPath,
  };
}

export const doctorCommand = defineCommand({
  meta: {
    name: "doctor",
    description:
      "Check nsh.conf, the JWT, slurmrestd and its API version, ssh, the cluster state directory and the remote Nix store; " +
      "say what to fix.",
  },
  async run() {
    const checks: Check[] = [];
    const add = (name: string, ok: boolean, detail: string) => {
      checks.push({ name, ok, detail });
      process.stdout.write(`${ok ? "ok  " : "FAIL"}  ${name}: ${detail}\n`);
    };
    const loaded = loadNshConf();
    const confWarnings = loaded.warnings.length ? ` (${loaded.warnings.join("; ")})` : "";
    const confDetail = loaded.errors.length
      ? loaded.errors.map((e) => e.message).join("; ")
      : `${loaded.files.join(", ") || "no nsh.conf found: defaults"}${confWarnings}`;
    add("nsh.conf", loaded.errors.length === 0, confDetail);
    const c = loaded.config;
    if (loaded.errors.length === 0) {
      // The hook's own readiness check: while anything is missing it declines every build.
      const searched = nshConfFiles(process.env);
      const missing = missingSetup({ conf: c, env: process.env, files: loaded.files, searched, readable });
      const detail = missing.length ? `missing: ${missing.join("; ")}; until then the hook declines every build` : "the hook takes the cluster's builds";
      add("hook setup", missing.length === 0, detail);
    }
    // Whether Nix runs nsh at all: the Nix version and nix.conf traps (doctor-nix.ts).
    for (const check of nixHookChecks(nixHookFacts())) add(check.what, check.ok, check.detail);
    // The scheduler's own checks (for slurm: the JWT, then slurmrestd and its API version).
    const module = schedulerModule(c["job-scheduler"]);
    if (module?.create) {
      try {
        for (const check of await doctorChecks(await module.create(c, process.env, {}))) add(check.what, check.ok, check.detail);
      } catch (e) {
        add(module.service, false, (e as Error).message);
      }
    }
    let pool: SshPool | undefined;
    try {
      pool = new SshPool(sshPoolOptions(c));
      const login = parseDestination(loginHostOf(c));
      const dir = c["slurm-state-dir"];
      if (!dir) add("slurm-state-dir", false, "not set: set it to a directory on the cluster's shared file system (e.g. ~/.nsh)");
      else {
        const r = await pool.runCommand(login, `mkdir -p ${shellQuote(dir)} && test -w ${shellQuote(dir)} && echo writable`);
        const writable = r.stdout.includes("writable");
        add("slurm-state-dir", writable, writable ? `${dir} on ${login.text}` : `${dir} on ${login.text}: ${r.stderr.trim() || "not writable"}`);
      }
      const storeOpts = { remoteStore: c["remote-store"], nixBinDir: c["remote-nix-bin-dir"] || undefined, storeDir: c["store-dir"] };
      const remote = await openRemoteServe(pool, [login], storeOpts);
      add("remote Nix store", true, `${remote.client.name} answers the serve protocol (2.${remote.client.minor})`);
      await remote.client.close();
    } catch (e) {
      add("ssh and remote Nix", false, (e as Error).message);
    } finally {
      pool?.close();
    }
    const bad = checks.filter((x) => !x.ok).length;
    process.stdout.write(bad ? `${bad} problem${bad === 1 ? "" : "s"} found\n` : "everything nsh needs is in place\n");
    process.exitCode = bad ? 1 : 0;
  },
});
