// Expected: nsh counts as set up only when a submit could work: an nsh.conf was found, slurm-state-dir
// is set, and a JWT is at hand (slurm-jwt-token, a readable slurm-jwt-token-file, or SLURM_JWT when
// neither is set, the order the scheduler takes them in). Each missing thing is named by its
// setting. In the hook, a missing thing makes every try a decline with ONE warning per hook process.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultNshConfig, type NshConfig } from "../../src/config/nsh-conf.ts";
import { missingSetup, notReadyMessage } from "../../src/hook/readiness.ts";
import { confLoader, request, runInProcess, settingsBlob, tryReq } from "../hook/harness.ts";

const SEARCHED = ["/etc/nix/nsh.conf", "/home/u/.config/nix/nsh.conf"];
const FOUND = ["/etc/nix/nsh.conf"];
const readable = (p: string) => p === "/etc/nix/slurm.jwt";
const check = (over: Partial<NshConfig>, env: Record<string, string> = {}, files = FOUND) =>
  missingSetup({ conf: { ...defaultNshConfig(), ...over }, env, files, searched: SEARCHED, readable });

const STATE = { "slurm-state-dir": "/home/u/.nsh" };
const NO_JWT = "a JWT for slurmrestd (slurm-jwt-token, slurm-jwt-token-file or SLURM_JWT in the environment)";
const NO_STATE = "slurm-state-dir (where jobs keep their files on the cluster)";

describe("ready", () => {
  test.each([
    ["inline token", { ...STATE, "slurm-jwt-token": "eyJ" }, {}],
    ["readable token file", { ...STATE, "slurm-jwt-token-file": "/etc/nix/slurm.jwt" }, {}],
    ["SLURM_JWT in the environment", STATE, { SLURM_JWT: "eyJ" }],
    ["inline token wins over an unreadable file", { ...STATE, "slurm-jwt-token": "eyJ", "slurm-jwt-token-file": "/nope" }, {}],
    ["slurm-native needs no JWT", { ...STATE, "job-scheduler": "slurm-native" as const }, {}],
    ["slurm-cli needs no JWT", { ...STATE, "job-scheduler": "slurm-cli" as const }, {}],
  ])("%s", (_name, over, env) => expect(check(over, env)).toEqual([]));
});

describe("missing, named by setting", () => {
  test.each([
    ["no nsh.conf at all", {}, {}, [], [`nsh.conf (none found at ${SEARCHED.join(" or ")})`, NO_STATE, NO_JWT]],
    ["no nsh.conf, SLURM_JWT set", {}, { SLURM_JWT: "eyJ" }, [], [`nsh.conf (none found at ${SEARCHED.join(" or ")})`, NO_STATE]],
    ["no slurm-state-dir", { "slurm-jwt-token": "eyJ" }, {}, FOUND, [NO_STATE]],
    ["slurm-state-dir of blanks", { "slurm-state-dir": "  ", "slurm-jwt-token": "eyJ" }, {}, FOUND, [NO_STATE]],
    ["no token", STATE, {}, FOUND, [NO_JWT]],
    ["an empty SLURM_JWT", STATE, { SLURM_JWT: " " }, FOUND, [NO_JWT]],
    ["an unreadable token file, even with SLURM_JWT", { ...STATE, "slurm-jwt-token-file": "/nope" }, { SLURM_JWT: "eyJ" }, FOUND, ["a readable slurm-jwt-token-file (/nope cannot be read)"]],
    ["slurm-native without slurm-state-dir", { "job-scheduler": "slurm-native" as const }, {}, FOUND, [NO_STATE]],
    ["slurm-cli without slurm-state-dir", { "job-scheduler": "slurm-cli" as const }, {}, FOUND, [NO_STATE]],
  ])("%s", (_name, over, env, files, missing) => expect(check(over, env, files)).toEqual(missing));
});

test("the warning names what is missing and where builds go", () => {
  const m = notReadyMessage([NO_STATE, NO_JWT]);
  expect(m).toContain(`missing: ${NO_STATE}; ${NO_JWT}`);
  expect(m).toContain("Nix's own build hook or are built locally");
});

test("in the hook: every try is declined, with one warning for the whole process", async () => {
  const drv = (n: string) => `/nix/store/${n.repeat(32)}-x.drv`;
  let ran = 0;
  const record = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-unready-"));
  const r = await runInProcess({
    chunks: [settingsBlob([["builders", ""]]), ...["a", "b", "c"].map((n) => request(tryReq(drv(n))))],
    conf: confLoader({ "slurm-state-dir": "" }),
    executors: { slurm: async () => ++ran },
    // a fallback that declines each try and stays (like build-remote with builders of another system)
    fallbackHook: [process.execPath, path.join(import.meta.dir, "..", "hook", "fixtures", "recording-hook.ts")],
    env: { ...process.env, RECORD_DIR: record, SLURM_JWT: "" },
  }).finally(() => fs.rmSync(record, { recursive: true, force: true }));
  expect(ran).toBe(0);
  expect(r.replies).toEqual(["# decline", "# decline", "# decline"]);
  const warnings = r.messages.filter((m) => m.level === 1).map((m) => m.msg);
  expect(warnings).toEqual([`nsh: warning: ${notReadyMessage([NO_STATE])}`]);
});
