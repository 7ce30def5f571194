// Expected: `nsh external-builder` always writes Nix's "\x02" set-up line first (Nix waits for it
// before streaming the log), then for input it cannot use — a missing or malformed build.json, a
// description matching no derivation in the store, an nsh.conf that is not set up, a derivation the
// cluster does not offer — it exits 1 with one `nsh: error:` line saying what and where (the build
// fails with it in its log), never a stack trace, and submits nothing.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultNshConfig, type LoadedNshConfig } from "../../src/config/nsh-conf.ts";
import { runExternalBuilder } from "../../src/hook/external-builder.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-extb-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const store = path.join(dir, "store");
fs.mkdirSync(store);
const hash = "a".repeat(32);
const out = `${store}/${"b".repeat(32)}-job`;
const drvText = (features: string) =>
  `Derive([("out","${out}","","")],[],[],"x86_64-linux","/bin/sh",["-c","x"],` +
  `[("name","job"),("out","${out}"),("requiredSystemFeatures","${features}")])`;
fs.writeFileSync(`${store}/${hash}-job.drv`, drvText("gpu"));

const build = (over: Record<string, unknown> = {}) => ({
  version: 1,
  builder: "/bin/sh",
  args: ["-c", "x"],
  env: { name: "job", out },
  topTmpDir: path.join(dir, "nix-build-job.drv-0"),
  tmpDir: path.join(dir, "nix-build-job.drv-0", "build"),
  tmpDirInSandbox: "/build",
  storeDir: store,
  realStoreDir: store,
  system: "x86_64-linux",
  inputPaths: [],
  outputs: { out },
  ...over,
});

async function run(json: unknown, conf?: Partial<LoadedNshConfig>) {
  const file = path.join(dir, `build-${Math.random().toString(36).slice(2)}.json`);
  if (json !== undefined) fs.writeFileSync(file, typeof json === "string" ? json : JSON.stringify(json));
  let text = "";
  let built = false;
  const loaded: LoadedNshConfig = {
    config: { ...defaultNshConfig(), "slurm-state-dir": "/cluster/nsh", "slurm-jwt-token": "x" },
    origins: new Map(),
    files: ["/etc/nix/nsh.conf"],
    warnings: [],
    errors: [],
    ...conf,
  };
  const code = await runExternalBuilder([file], {
    env: { PATH: process.env.PATH },
    write: (t) => (text += typeof t === "string" ? t : new TextDecoder().decode(t)),
    loadConf: () => loaded,
    executors: {
      slurm: async () => {
        built = true;
        return 0;
      },
    },
  });
  return { code, text, built, file };
}

const noStack = (t: string) => !/^\s+at .+:\d+/m.test(t);

test("a missing build.json: the set-up line, then an error naming the file", async () => {
  const r = await run(undefined);
  expect(r.text.startsWith("\x02\n")).toBe(true);
  expect(r.code).toBe(1);
  expect(r.text).toContain(r.file);
  expect(r.built).toBe(false);
});

test("malformed JSON names the file and the problem", async () => {
  const r = await run(build({ outputs: [] }));
  expect(r.code).toBe(1);
  expect(r.text).toContain(`nsh: error: ${r.file}: 'outputs' must be an object of strings`);
  expect(noStack(r.text)).toBe(true);
});

test("outputs matching no derivation (a --check build, floating CA) say so", async () => {
  const r = await run(build({ outputs: { out: `${store}/${"c".repeat(32)}-job` } }));
  expect(r.code).toBe(1);
  expect(r.text).toMatch(/no derivation job\.drv in .* has the outputs Nix asks for/);
  expect(r.built).toBe(false);
});

test("nsh not set up: the readiness message, nothing built", async () => {
  const r = await run(build(), { config: { ...defaultNshConfig() }, files: [] });
  expect(r.code).toBe(1);
  expect(r.text).toContain("nsh is not set up");
  expect(r.built).toBe(false);
});

test("a derivation the cluster does not offer fails with nsh's reason", async () => {
  const r = await run(build());
  expect(r.code).toBe(1);
  expect(r.text).toContain("requires the feature 'gpu'");
  expect(r.built).toBe(false);
});

test("a derivation the cluster offers goes to the scheduler's executor", async () => {
  fs.writeFileSync(`${store}/${hash}-job.drv`, drvText("nsh"));
  const r = await run(build());
  expect(r.text).not.toContain("error");
  expect(r.code).toBe(0);
  expect(r.built).toBe(true);
});
