// Expected: with several hosts, a host that is down or refuses is skipped and the next one is used;
// when every host fails, the error names each host and why, in the order they were tried.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "failover" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

test("first host down, second refuses the connection, third works", async () => {
  const top = await buildMany(lab, 3, 0);
  const r = await nshCopy(lab, ["--to", "127.0.0.1:1", "--to", `nosuchhost.invalid,${sshd.alias}`, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
  expect(r.stderr).toContain(`copied 4 paths`);
  expect(r.stderr).toContain(`to ${sshd.alias}`);
  expect(r.code).toBe(0);
});

test("all hosts failing: every host and its reason, in order", async () => {
  const top = await buildMany(lab, 1, 0);
  const r = await nshCopy(lab, ["--to", "127.0.0.1:1,nosuchhost.invalid", "--ssh-config", sshd.configFile, top]);
  expect(r.code).toBe(1);
  const lines = r.stderr.split("\n");
  const i = lines.findIndex((l) => l.includes("127.0.0.1:1") && /refused/.test(l));
  const j = lines.findIndex((l) => l.includes("nosuchhost.invalid") && /resolve|DNS/.test(l));
  expect(i).toBeGreaterThanOrEqual(0);
  expect(j).toBeGreaterThan(i);
});

test("bad command lines get a message, not a stack trace", async () => {
  const r1 = await nshCopy(lab, ["--to", "a", "--from", "b", "/x"]);
  expect(r1.code).toBe(2);
  expect(r1.stderr).toContain("either --to HOST or --from HOST");
  const r2 = await nshCopy(lab, ["--to", "[::1", "/x"]);
  expect(r2.code).toBe(2);
  expect(r2.stderr).toContain("[::1");
  expect(r2.stderr).not.toContain("    at ");
});
