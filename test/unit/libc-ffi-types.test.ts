// Expected: src/sys/libc.ts binds libc through Bun.FFI (bun:ffi's native layer, without loading the
// module: start-up CPU) with bun:ffi's own FFIType numbers, and the calls work.
import { FFIType } from "bun:ffi";
import { expect, test } from "bun:test";
import { FFI_TYPES, errno, isTty, pipe } from "../../src/sys/libc.ts";
import { FileError, canRead, fileExists, readTextFile } from "../../src/sys/file.ts";

test("the FFIType numbers are bun:ffi's", () => {
  for (const [name, value] of Object.entries(FFI_TYPES)) expect(value).toBe(FFIType[name as keyof typeof FFIType] as number);
});

test("calls through it work and errors carry node:fs's code", () => {
  const [r, w] = pipe();
  expect(isTty(r)).toBe(false);
  expect(errno()).toBeGreaterThanOrEqual(0);
  expect(fileExists("/")).toBe(true);
  expect(fileExists("/nonexistent-nsh")).toBe(false);
  expect(canRead("/etc/hostname")).toBe(true);
  expect(readTextFile("/proc/self/cmdline").length).toBeGreaterThan(0);
  expect(() => readTextFile("/nonexistent-nsh")).toThrow(new FileError(2, "open", "/nonexistent-nsh"));
  expect(() => readTextFile("/nonexistent-nsh")).toThrow("ENOENT: no such file or directory, open '/nonexistent-nsh'");
  expect(() => readTextFile("/")).toThrow("EISDIR: illegal operation on a directory, read '/'");
  for (const fd of [r, w]) require("node:fs").closeSync(fd);
});

test("readTextFile reads as fs.readFileSync(p, 'utf8') does: BOM kept, bad bytes replaced, any size", () => {
  const fs = require("node:fs") as typeof import("node:fs");
  const dir = fs.mkdtempSync(`${require("node:os").tmpdir()}/nsh-readtext-`);
  try {
    const cases = [
      new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0x0a]),
      new Uint8Array([0x61, 0xff, 0xc3, 0x0a, 0xe2, 0x82, 0xac]),
      new TextEncoder().encode("x = y\n".repeat(50_000)),
      new Uint8Array(0),
    ];
    cases.forEach((bytes, i) => {
      fs.writeFileSync(`${dir}/${i}`, bytes);
      expect(readTextFile(`${dir}/${i}`)).toBe(fs.readFileSync(`${dir}/${i}`, "utf8"));
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
