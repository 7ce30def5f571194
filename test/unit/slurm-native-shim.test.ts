// The shim's cache key and compile line: the same inputs name the same file (so a second start
// finds it), and a new Slurm release, a changed shim source, another include or lib dir, another
// compiler or machine each name another file (so nothing loads a shim built for another libslurm).
import { expect, test } from "bun:test";
import { compileArgv, parseSlurmVersionHeader, SHIM_SOURCE, shimFileName, slurmVersionText } from "../../src/schedulers/slurm-native-shim.ts";

const base = { slurmVersion: "22.05.8", arch: "x64", includeDir: "/usr/include", libDir: "", compiler: "default" };

test("the same inputs give the same file name, carrying the Slurm version and the machine", () => {
  expect(shimFileName(base)).toBe(shimFileName({ ...base }));
  expect(shimFileName(base)).toMatch(/^libnsh-slurm-22\.05\.8-x64-[0-9a-f]{16}\.so$/);
});

test("every input that shapes the binary changes the name", () => {
  const variants = [
    { ...base, slurmVersion: "26.05.0" },
    { ...base, arch: "arm64" },
    { ...base, includeDir: "/opt/slurm/include" },
    { ...base, libDir: "/opt/slurm/lib" },
    { ...base, compiler: "/usr/bin/clang" },
    { ...base, source: `${SHIM_SOURCE}\n/* changed */\n` },
  ];
  const names = new Set([base, ...variants].map(shimFileName));
  expect(names.size).toBe(variants.length + 1);
});

test("a hostile version string cannot leave the cache directory", () => {
  expect(shimFileName({ ...base, slurmVersion: "../../etc/x" })).not.toContain("/");
});

test("slurm_version.h's SLURM_VERSION_NUMBER → the release", () => {
  expect(parseSlurmVersionHeader("#define SLURM_VERSION_NUMBER 0x160508\n")).toBe("22.05.8");
  expect(parseSlurmVersionHeader("#  define SLURM_VERSION_NUMBER 0x1a0500")).toBe("26.05.0");
  expect(parseSlurmVersionHeader("/* nothing */")).toBeNull();
  expect(slurmVersionText(0x170b0a)).toBe("23.11.10");
});

test("the compile line reads the source from stdin and links libslurm (rpath only for a lib dir)", () => {
  expect(compileArgv("/usr/bin/cc", "/usr/include", "", "/c/out.so")).toEqual(
    ["/usr/bin/cc", "-O2", "-fPIC", "-shared", "-I", "/usr/include", "-x", "c", "-", "-x", "none", "-o", "/c/out.so", "-lslurm", "-ldl"],
  );
  expect(compileArgv("cc", "/i", "/opt/slurm/lib", "/o.so")).toContain("-Wl,-rpath,/opt/slurm/lib");
});

test("the shim source keeps to malloc/free (TinyCC and libc disagree on strdup/calloc)", () => {
  expect(SHIM_SOURCE).not.toMatch(/\b(strdup|calloc|realloc)\s*\(/);
});
