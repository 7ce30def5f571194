import { describe, expect, test } from "bun:test";
import {
  NIX_BASE32_CHARS,
  StorePathError,
  isDerivationPath,
  isStorePath,
  parseStorePath,
  storePathNameProblem,
} from "../../src/nix/store-path.ts";

const H = "yzp6jj447ixvarqp72n4psnmm770dsfm"; // from a real Nix 2.8 output path

describe("parseStorePath", () => {
  test.each([
    [`/nix/store/${H}-hello-1.0`, undefined, { storeDir: "/nix/store", hash: H, name: "hello-1.0" }],
    [`/nix/store/${H}-fixed.tar.gz.drv`, "/nix/store/", { storeDir: "/nix/store", hash: H, name: "fixed.tar.gz.drv" }],
    [`/tmp/s/${H}-a+b-c_d?e=f`, "/tmp/s", { storeDir: "/tmp/s", hash: H, name: "a+b-c_d?e=f" }],
    [`/${H}-root`, "/", { storeDir: "/", hash: H, name: "root" }],
    [`/nix/store/${H}-.hidden`, undefined, { storeDir: "/nix/store", hash: H, name: ".hidden" }],
    [`/nix/store/${H}-...`, undefined, { storeDir: "/nix/store", hash: H, name: "..." }],
    [`/nix/store/${H}-${"x".repeat(211)}`, undefined, { storeDir: "/nix/store", hash: H, name: "x".repeat(211) }],
  ])("valid %s", (path, storeDir, expected) => {
    expect(parseStorePath(path, storeDir)).toEqual(expected);
    expect(isStorePath(path, storeDir)).toBe(true);
  });

  test.each([
    [`/gnu/store/${H}-x`, "is not in the Nix store '/nix/store'"],
    [`/nix/store/${H}-x/bin/sh`, "is not a direct child"],
    [`/nix/store//${H}-x`, "is not a direct child"],
    [`/nix/store/${H}-x/`, "is not a direct child"],
    [`/nix/store/${H}`, "is too short"],
    [`/nix/store/${H}-`, "is too short"],
    ["/nix/store/short-x", "is too short"],
    [`/nix/store/${H.slice(0, 31)}e-x`, "illegal base-32 character 'e'"],
    [`/nix/store/${H.slice(0, 31)}A-x`, "illegal base-32 character 'A'"],
    [`/nix/store/${H}_x`, "lacks the '-'"],
    [`/nix/store/${H}-a b`, "illegal character ' '"],
    [`/nix/store/${H}-caf\u00e9`, "illegal character 'é'"],
    [`/nix/store/${H}-${"x".repeat(212)}`, "longer than 211 characters"],
    [`/nix/store/${H}-.`, "must not be '.'"],
    [`/nix/store/${H}-..`, "must not be '..'"],
    [`/nix/store/${H}-.-x`, "must not be '.'"],
    [`/nix/store/${H}-..-x`, "must not be '..'"],
  ])("invalid %s", (path, message) => {
    expect(() => parseStorePath(path)).toThrow(StorePathError);
    expect(() => parseStorePath(path)).toThrow(message);
    expect(isStorePath(path)).toBe(false);
  });

  test("relative store dir is refused", () => {
    expect(() => parseStorePath(`nix/store/${H}-x`, "nix/store")).toThrow("not an absolute path");
  });

  test("alphabet", () => {
    expect(NIX_BASE32_CHARS).toHaveLength(32);
    for (const c of "eout") expect(NIX_BASE32_CHARS).not.toContain(c);
  });

  test("storePathNameProblem", () => {
    expect(storePathNameProblem("ok-1.0")).toBeUndefined();
    expect(storePathNameProblem("")).toBe("name is empty");
  });

  test("isDerivationPath", () => {
    expect(isDerivationPath(`/nix/store/${H}-hello.drv`)).toBe(true);
    expect(isDerivationPath(`/nix/store/${H}-hello`)).toBe(false);
    expect(isDerivationPath("/tmp/hello.drv")).toBe(false);
  });
});
