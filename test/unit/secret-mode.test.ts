// Expected: an inline slurm-jwt-token in an nsh.conf that group or others may read draws a warning
// naming the file and line (nsh.conf loading reports it); in a file only its owner reads, or when
// the token comes from elsewhere, there is none.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadNshConf } from "../../src/config/nsh-conf.ts";
import { readersBeyondOwner, secretInReadableFile } from "../../src/config/secret-mode.ts";

test.each([
  [0o600, null],
  [0o400, null],
  [0o640, "group"],
  [0o604, "others"],
  [0o644, "group and others"],
  [0o100644, "group and others"],
] as const)("mode %o: readable by %p", (mode, want) => {
  expect(readersBeyondOwner(mode)).toBe(want);
});

test("the warning names the setting, file and line", () => {
  const w = secretInReadableFile("slurm-jwt-token", "/etc/nix/nsh.conf:4", 0o100644);
  expect(w).toContain("/etc/nix/nsh.conf:4");
  expect(w).toContain("slurm-jwt-token");
  expect(w).toContain("0644");
  expect(secretInReadableFile("slurm-jwt-token", "/etc/nix/nsh.conf:4", 0o100600)).toBeNull();
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-secret-mode-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each([
  ["inline token, mode 0644", "slurm-jwt-token = eyJ.x.y\n", 0o644, true],
  ["inline token, mode 0600", "slurm-jwt-token = eyJ.x.y\n", 0o600, false],
  ["token file named, mode 0644", "slurm-jwt-token-file = /nonexistent\n", 0o644, false],
] as const)("loadNshConf: %s", (_what, text, mode, warns) => {
  const conf = path.join(dir, `nsh-${mode.toString(8)}-${warns}.conf`);
  fs.writeFileSync(conf, `job-scheduler = slurm\n${text}`);
  fs.chmodSync(conf, mode);
  const loaded = loadNshConf({ NSH_CONF: conf });
  const w = loaded.warnings.filter((x) => x.includes("slurm-jwt-token'"));
  if (warns) expect(w).toEqual([expect.stringContaining(`${conf}:2`)]);
  else expect(w).toEqual([]);
});
