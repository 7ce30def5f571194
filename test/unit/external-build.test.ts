// The build description Nix ≥ 2.32 gives an external builder (build.json, version 1): parsed with
// a clear message naming the file and the field for anything malformed; the derivation found by its
// build directory's name and its outputs; the program's own arguments (--verbosity N) before the file.
import { expect, test } from "bun:test";
import {
  buildUserOf, derivationFileName, isTheDerivation, parseExternalBuild, parseExternalBuilderArgs,
} from "../../src/nix/external-build.ts";

const S = "/nix/store";
const good = {
  version: 1,
  builder: "/bin/sh",
  args: ["-c", "echo hi > $out"],
  env: { name: "job-1", out: `${S}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-job-1`, TMPDIR: "/build" },
  topTmpDir: "/tmp/nix-build-job-1.drv-0",
  tmpDir: "/tmp/nix-build-job-1.drv-0/build",
  tmpDirInSandbox: "/build",
  storeDir: S,
  realStoreDir: S,
  system: "x86_64-linux",
  inputPaths: [`${S}/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-dep`],
  outputs: { out: `${S}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-job-1` },
};
const text = (o: Record<string, unknown>) => JSON.stringify(o);

test("a version 1 description parses into what the build needs", () => {
  const b = parseExternalBuild(text(good), "/tmp/x/build.json");
  expect(b.system).toBe("x86_64-linux");
  expect(b.inputPaths).toEqual(good.inputPaths);
  expect(b.outputs).toEqual(good.outputs);
  expect(b.realStoreDir).toBe(S);
  // realStoreDir missing: the store directory is where the files are.
  const { realStoreDir: _, ...noReal } = good;
  expect(parseExternalBuild(text(noReal), "f").realStoreDir).toBe(S);
});

test.each([
  ["not JSON", "{", /f: not JSON/],
  ["a list", "[]", /f: not a JSON object/],
  ["another version", text({ ...good, version: 2 }), /f: version 2, nsh knows version 1 only/],
  ["no system", text({ ...good, system: undefined }), /f: 'system' must be a non-empty string/],
  ["args not strings", text({ ...good, args: [1] }), /f: 'args' must be a list of strings/],
  ["outputs not strings", text({ ...good, outputs: { out: 1 } }), /f: 'outputs' must be an object of strings/],
  ["no outputs", text({ ...good, outputs: {} }), /f: 'outputs' is empty/],
  ["inputPaths missing", text({ ...good, inputPaths: undefined }), /f: 'inputPaths' must be a list of strings/],
])("malformed (%s) is refused, naming the file and field", (_what, input, message) => {
  expect(() => parseExternalBuild(input, "f")).toThrow(message);
});

test.each([
  ["the build directory's name", { topTmpDir: "/tmp/nix-build-hello-2.12.drv-3", env: {} }, "hello-2.12.drv"],
  ["a trailing slash", { topTmpDir: "/tmp/nix-build-a.drv-0/", env: {} }, "a.drv"],
  ["else the name attribute", { topTmpDir: "/tmp/elsewhere", env: { name: "x" } }, "x.drv"],
  ["neither", { topTmpDir: "/tmp/elsewhere", env: {} }, undefined],
])("the derivation's file name from %s", (_what, b, want) => {
  expect(derivationFileName(b)).toBe(want);
});

test.each([
  ["same outputs and system", "x86_64-linux", { out: "/s/a-o" }, true],
  ["another system", "aarch64-linux", { out: "/s/a-o" }, false],
  ["an output at another path (--check, floating CA)", "x86_64-linux", { out: "/s/random-o" }, false],
  ["an output it does not have", "x86_64-linux", { out: "/s/a-o", dev: "/s/a-dev" }, false],
  ["a subset of its outputs", "x86_64-linux", {}, true],
])("isTheDerivation: %s", (_what, system, outputs, want) => {
  const drv = { platform: "x86_64-linux", outputs: new Map([["out", { path: "/s/a-o", hashAlgo: "", hash: "" }]]) };
  expect(isTheDerivation(drv, { system, outputs })).toBe(want);
});

test.each([
  [["/t/build.json"], { file: "/t/build.json", verbosity: 3 }],
  [["--verbosity", "5", "/t/build.json"], { file: "/t/build.json", verbosity: 5 }],
  [["--verbosity=0", "/t/build.json"], { file: "/t/build.json", verbosity: 0 }],
])("arguments %j", (argv, want) => {
  expect(parseExternalBuilderArgs(argv)).toEqual(want);
});

test.each([
  [[], /last argument/],
  [["--verbosity"], /last argument/],
  [["--verbosity", "/t/build.json"], /unknown argument '--verbosity'/],
  [["--fast", "/t/build.json"], /unknown argument '--fast'/],
])("bad arguments %j say what is expected", (argv, message) => {
  expect(() => parseExternalBuilderArgs(argv)).toThrow(message);
});

// Nix switched us to a build user when we are not root but Nix (our parent) is.
test.each([
  [872415232, "Name:\tnix-daemon\nUid:\t0\t0\t0\t0\n", 872415232],
  [30001, "Name:\tnix-daemon\nUid:\t0\t0\t0\t0\n", 30001],
  [0, "Uid:\t0\t0\t0\t0\n", undefined],
  [1000, "Uid:\t1000\t1000\t1000\t1000\n", undefined],
  [1000, "", undefined],
] as const)("uid %p under a parent with status %p: build user %p", (uid, status, expected) => {
  expect(buildUserOf(uid, status)).toBe(expected);
});
