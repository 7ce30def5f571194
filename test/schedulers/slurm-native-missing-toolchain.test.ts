// slurm-native on a login node without Slurm's C headers, without a C compiler or without
// libslurm.so (and no cached shim). Expected: preparing, and submitting, fail at once with a
// message that names what is missing (slurm/slurm.h and the package that has it; the compiler and
// the PATH searched; libslurm and where it was looked for) and
// suggests job-scheduler = slurm-cli; `doctor` marks the same checks as failed. No lab is needed:
// nothing reaches libslurm.
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SlurmNativeScheduler } from "../../src/schedulers/slurm-native.ts";
import { thrown } from "./thrown.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-missing-"));
const conf = path.join(root, "slurm.conf");
fs.writeFileSync(conf, "# never read: the toolchain check comes first\n");
const emptyDir = fs.mkdtempSync(path.join(root, "include-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const job = { name: "never", script: "#!/bin/sh\ntrue\n", workingDirectory: root, environment: {} };


test("no slurm/slurm.h in the include dir → the error names it, libslurm-dev, and slurm-cli", async () => {
  const s = new SlurmNativeScheduler({ conf, includeDir: emptyDir, cacheDir: path.join(root, "cache-a") });
  for (const e of [await thrown(s.prepare()), await thrown(s.submit(job))]) {
    expect(e.kind).toBe("config");
    expect(e.message).toContain(`slurm/slurm.h`);
    expect(e.message).toContain(emptyDir);
    expect(e.message).toContain("libslurm-dev");
    expect(e.message).toContain("job-scheduler = slurm-cli");
  }
  const checks = await s.doctor();
  expect(checks.find((c) => c.what === "slurm headers")).toMatchObject({ ok: false });
  expect(checks.find((c) => c.what === "libslurm shim")).toMatchObject({ ok: false });
});

test("no C compiler on PATH → the error names the compiler, the PATH, and slurm-cli", async () => {
  const noCc = fs.mkdtempSync(path.join(root, "bin-"));
  const s = new SlurmNativeScheduler({ conf, cacheDir: path.join(root, "cache-b"), env: { PATH: noCc } });
  const e = await thrown(s.prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain("no C compiler");
  expect(e.message).toContain(noCc);
  expect(e.message).toContain("job-scheduler = slurm-cli");
  expect(fs.readdirSync(path.join(root, "cache-b"))).toEqual([]); // nothing half-written was left
});

test("a named compiler that does not exist is named", async () => {
  const s = new SlurmNativeScheduler({ conf, compiler: "/opt/nowhere/gcc-13", cacheDir: path.join(root, "cache-c") });
  const e = await thrown(s.prepare());
  expect(e.message).toContain("/opt/nowhere/gcc-13");
  expect(e.message).toContain("slurm-native-cc");
});

test("no libslurm.so in slurm-native-lib-dir → the error names libslurm, libslurm-dev, and slurm-cli", async () => {
  const emptyLib = fs.mkdtempSync(path.join(root, "lib-"));
  const s = new SlurmNativeScheduler({ conf, libDir: emptyLib, cacheDir: path.join(root, "cache-d") });
  const e = await thrown(s.prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain(`libslurm (libslurm.so) is not in ${emptyLib}`);
  expect(e.message).toContain("libslurm-dev");
  expect(e.message).toContain("job-scheduler = slurm-cli");
  expect((await s.doctor()).find((c) => c.what === "libslurm")).toMatchObject({ ok: false });
});
