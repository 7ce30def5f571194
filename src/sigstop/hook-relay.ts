// The hook personality of nix-sigstop: Nix runs it as build hook. It relays the protocol between
// Nix and the actual hook byte for byte, and starts a notifier when a build starts (accepted by the
// actual hook, or declined and so built locally) so the wrapper can stop nix while it waits.
import fs from "node:fs";
import path from "node:path";
import { outputLockPaths, parseDerivation } from "../nix/derivation.ts";
import {
  encodeAccepted,
  encodeSettings,
  encodeTry,
  nixMsg,
  parseReplyLine,
  readAccepted,
  readSettings,
  readTry,
  verbosityFromArgv,
  type TryRequest,
} from "../nix/hook-protocol.ts";
import { WireReader, concat } from "../nix/wire.ts";
import { pipe } from "../sys/libc.ts";
import { ByteLines } from "../util/lines.ts";
import { selfCommand } from "../util/self.ts";
import { sendEvent } from "./notifier.ts";
import { defaultHook, rewriteSettings, splitHookSetting, type HookConfig } from "./hook-config.ts";

const toNix = (bytes: Uint8Array | string) => (typeof bytes === "string" ? fs.writeSync(2, bytes) : fs.writeSync(2, bytes));
const text = (b: Uint8Array) => new TextDecoder().decode(b).replace(/\n$/, "");

function fdOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function nixBinDir(): string {
  // Nix (the daemon or the client that builds) is our parent: use its own installation.
  try {
    const exe = fs.readlinkSync(`/proc/${process.ppid}/exe`);
    if (/^nix/.test(path.basename(exe))) return path.dirname(exe);
  } catch {}
  const nix = Bun.which("nix");
  return nix ? path.dirname(fs.realpathSync(nix)) : "/usr/bin";
}

export async function runHookRelay(rundir: string, argv: string[]): Promise<number> {
  const verbosity = verbosityFromArgv(argv);
  const cfg = JSON.parse(fs.readFileSync(path.join(rundir, "hook.json"), "utf8")) as HookConfig;
  const hook = cfg.actualHook ?? defaultHook(nixBinDir(), fs.existsSync);
  const fromNix = new WireReader(Bun.stdin.stream().getReader());
  const settings = rewriteSettings(await readSettings(fromNix), cfg);

  // Like Nix: the hook's stdout and stderr are one pipe; fds 4 and 5 are Nix's own log pipe.
  const [outR, outW] = pipe();
  const child = Bun.spawn([...hook, String(verbosity)], {
    stdio: ["pipe", outW, outW, "ignore", fdOpen(4) ? 4 : "ignore", fdOpen(5) ? 5 : "ignore"],
    cwd: "/",
  });
  fs.closeSync(outW);
  const hookName = hook.join(" ");
  const lines = new ByteLines(Bun.file(outR).stream());
  // A hook that died takes its pipe with it: the missing reply below is what gets reported.
  const toHook = async (bytes: Uint8Array) => {
    try {
      child.stdin.write(bytes);
      await child.stdin.flush();
    } catch {}
  };
  const endHook = async () => {
    try {
      await child.stdin.end();
    } catch {}
  };
  await toHook(encodeSettings(settings));

  let builds = 0;
  for (;;) {
    const req = await readTry(fromNix);
    if (!req) {
      // Nix has no more builds for this hook.
      await endHook();
      await child.exited;
      return 0;
    }
    await toHook(encodeTry(req));
    for (;;) {
      const line = await lines.next();
      if (!line) {
        const code = await child.exited;
        toNix(nixMsg(0, `nix-sigstop: the build hook '${hookName}' exited (status ${code}) without answering for '${req.drvPath}'`));
        return 1;
      }
      const reply = parseReplyLine(text(line));
      if (reply === undefined) {
        toNix(line);
        continue;
      }
      if (reply === "accept") {
        const machine = await lines.next();
        if (!machine) {
          toNix(nixMsg(0, `nix-sigstop: the build hook '${hookName}' accepted '${req.drvPath}' but named no machine`));
          return 1;
        }
        startNotifier(cfg, req, "accept", ++builds);
        toNix(concat([line, machine])); // one write: Nix reads the machine line right after `# accept`
        await toHook(encodeAccepted(await readAccepted(fromNix)));
        await endHook();
        for (let l = await lines.next(); l; l = await lines.next()) toNix(l);
        return await child.exited;
      }
      if (reply === "decline" || reply === "decline-permanently") startNotifier(cfg, req, reply, ++builds);
      else if (reply !== "postpone")
        toNix(nixMsg(0, `nix-sigstop: the build hook '${hookName}' gave the reply '${reply}', which Nix does not know`));
      toNix(line);
      break;
    }
  }
}

/** Nix holds the output locks from before it asks us until the build ends: watch them. */
function startNotifier(cfg: HookConfig, req: TryRequest, reply: string, n: number): void {
  let locks: string[];
  try {
    locks = outputLockPaths(req.drvPath, parseDerivation(fs.readFileSync(req.drvPath, "utf8")));
  } catch (e) {
    toNix(nixMsg(1, `nix-sigstop: cannot read the outputs of '${req.drvPath}' (${(e as Error).message}); nix keeps running during this build`));
    return;
  }
  const id = `${process.pid}-${n}`;
  const args = JSON.stringify({ fifo: cfg.fifo, id, drv: req.drvPath, reply, locks });
  const notifier = Bun.spawn([...selfCommand(), "__sigstop-notify", args], { detached: true, stdio: ["ignore", "ignore", "ignore"] });
  notifier.unref();
  // Announced here, before Nix hears the reply: a quick build must not end before the wrapper knows it began.
  sendEvent(cfg.fifo, { ev: "start", id, drv: req.drvPath, reply, notifier: notifier.pid });
}
