// Expected: when the ssh connection dies in the middle of a copy (the big NAR going through OpenSSH's
// ssh, nsh's default, or through ssh2 alone), nsh copy fails within seconds with
// a message naming the host, the half-sent path is not registered on the remote (its store still
// verifies), and running the same copy again succeeds.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { NSH, buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "drop" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

const sshdSessions = () =>
  fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]) === sshd.pid;
    } catch {
      return false;
    }
  });

test.each([
  ["OpenSSH", []],
  ["ssh2 alone", ["--openssh-min-size", "0"]],
])("%s: connection killed mid-copy: clear error, nothing half-registered, a retry succeeds", async (_name, extra) => {
  const top = await buildMany(lab, 2, 400);
  const big = (await lab.run(["nix-store", "-q", "--references", top])).stdout.split("\n").find((p) => p.includes("-big-"))!;
  const remoteBig = path.join(sshd.remoteRoot, "nix", "store", path.basename(big));
  const env = { ...lab.env, NSH_STATE_DIR: path.join(lab.root, "nsh-state") };
  const p = Bun.spawn([NSH, "copy", ...extra, "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top], { env, stdio: ["ignore", "pipe", "pipe"] });
  const stderr = new Response(p.stderr).text();
  // Wait until the big NAR is being unpacked remotely, then cut every ssh session.
  const t0 = Date.now();
  while (!fs.existsSync(remoteBig) || fs.statSync(remoteBig).size < 10 << 20) {
    if (Date.now() - t0 > 30000) throw new Error("the big path never started arriving");
    await Bun.sleep(20);
  }
  for (const pid of sshdSessions()) process.kill(pid, "SIGKILL");
  const killedAt = Date.now();
  const code = await p.exited;
  expect(Date.now() - killedAt).toBeLessThan(10000);
  expect(code).toBe(1);
  expect(await stderr).toMatch(new RegExp(`${sshd.alias}|127\\.0\\.0\\.1`));
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", big])).code).not.toBe(0);
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "--verify"])).code).toBe(0);
  const retry = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
  expect(retry.code).toBe(0);
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", big])).code).toBe(0);
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "-q", "--hash", big])).stdout).toBe((await lab.run(["nix-store", "-q", "--hash", big])).stdout);
}, 120000);
