// The hook personality of nix-sigstop: Nix runs it as build hook. It relays the protocol between
// Nix and the actual hook byte for byte, and starts a notifier when a build starts (accepted by the
// actual hook, or declined and so built locally) so the wrapper can stop nix while it waits.
import fs from "node:fs";
import path from "node:path";
import { outputLockPaths, parseDerivation } from "../nix/derivation.ts";
import { HookChild, acceptBytes, launchedOverCapnp, nixBinDir, writeAll } from "../nix/hook-child.ts";
import {
  encodeAccepted, encodeSettings, encodeTry, nixMsg, readAccepted, readSettings, readTry, verbosityFromArgv, type TryRequest,
} from "../nix/hook-protocol.ts";
import { WireReader } from "../nix/wire.ts";
import { selfCommand } from "../util/self.ts";
import { sendEvent } from "./notifier.ts";
import { defaultHook, rewriteSettings, type HookConfig } from "./hook-config.ts";

const toNix = (bytes: Uint8Array | string) => writeAll(2, bytes);

export async function runHookRelay(rundir: string, argv: string[]): Promise<number> {
  if (launchedOverCapnp()) {
    process.stderr.write(
      "nix-sigstop: error: this Nix runs its build hook over Cap'n Proto RPC (Lix 2.94 or later), " +
        "which nix-sigstop does not speak yet; run the command with nix directly\n",
    );
    return 1;
  }
  const verbosity = verbosityFromArgv(argv);
  const cfg = JSON.parse(fs.readFileSync(path.join(rundir, "hook.json"), "utf8")) as HookConfig;
  const hook = cfg.actualHook ?? defaultHook(nixBinDir(), fs.existsSync);
  const fromNix = new WireReader(Bun.stdin.stream().getReader());
  const settings = rewriteSettings(await readSettings(fromNix), cfg);

  const child = new HookChild({ hook, verbosity });
  await child.send(encodeSettings(settings));

  let builds = 0;
  for (;;) {
    const req = await readTry(fromNix);
    if (!req) {
      // Nix has no more builds for this hook.
      await child.end();
      await child.exited;
      return 0;
    }
    await child.send(encodeTry(req));
    const r = await child.reply(toNix);
    if (r.kind === "eof") {
      toNix(nixMsg(0, `nix-sigstop: the build hook '${child.name}' exited (status ${r.code}) without answering for '${req.drvPath}'`));
      return 1;
    }
    const { word: reply, line } = r;
    if (reply === "accept") {
      const machine = await child.nextLine();
      if (!machine) {
        toNix(nixMsg(0, `nix-sigstop: the build hook '${child.name}' accepted '${req.drvPath}' but named no machine`));
        return 1;
      }
      startNotifier(cfg, req, "accept", ++builds);
      toNix(acceptBytes(line, machine)); // one write: Nix reads the machine line right after `# accept`
      await child.send(encodeAccepted(await readAccepted(fromNix)));
      await child.end();
      return await child.relayToEnd(toNix);
    }
    if (reply === "decline" || reply === "decline-permanently") startNotifier(cfg, req, reply, ++builds);
    else if (reply !== "postpone") toNix(nixMsg(0, `nix-sigstop: the build hook '${child.name}' gave the reply '${reply}', which Nix does not know`));
    toNix(line);
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
