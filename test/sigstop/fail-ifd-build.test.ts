// Expected: when an IFD build fails, nix-sigstop shows nix's own error (builder output tail
// included) and exits with the status plain nix exits with, through the daemon and with root's
// default (local) store; nix is continued and nothing stays stopped.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { nix, processesMentioning, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "fail" });
});
afterAll(async () => {
  await lab?.cleanup();
});

// `.value` forces the IFD: `nix eval` of an attrset prints a failing attribute as «error: …» and exits 0
// on Nix 2.26 and 2.34 (2.8 fails).
const failing = (s: string) => `(import ${lab.expr("ifd-fail")} { salt = "${s}"; }).value`;
const errorLines = (stderr: string) => stderr.split("\n").filter((l) => !l.startsWith("nix-sigstop:"));

test.each([
  ["through the daemon", ["--store", "daemon"]],
  ["with the default store", []],
])("a failing IFD build %s: same error and exit status as plain nix", async (_name, storeArgs) => {
  const s = salt();
  const wrapped = await sigstop(lab, ["eval", ...storeArgs, "--impure", "--expr", failing(s)]);
  // Plain nix on a fresh salt would build again; on the same salt it would fail the same way too.
  const plain = await nix(lab, ["eval", ...storeArgs, "--impure", "--expr", failing(s)]);
  expect(plain.code).not.toBe(0);
  expect(wrapped.code).toBe(plain.code);
  expect(wrapped.stderr).toContain(`failing on purpose (salt ${s})`);
  expect(errorLines(wrapped.stderr).filter((l) => l.startsWith("error:"))).toEqual(errorLines(plain.stderr).filter((l) => l.startsWith("error:")));
  expect(processesMentioning(lab.root).filter((p) => p.state === "T")).toEqual([]);
});
