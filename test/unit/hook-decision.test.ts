import { describe, expect, test } from "bun:test";
import { decide } from "../../src/hook/decision.ts";

const conf = (over: { system?: string; features?: string[]; mandatory?: string[] } = {}) => ({
  system: over.system ?? "x86_64-linux",
  "system-features": over.features ?? ["nsh"],
  "mandatory-system-features": over.mandatory ?? [],
});
const req = (system: string, requiredFeatures: string[] = []) => ({ system, requiredFeatures });

describe("taken", () => {
  test.each([
    ["plain derivation, default conf", req("x86_64-linux"), conf()],
    ["requires nsh", req("x86_64-linux", ["nsh"]), conf()],
    ["requires an offered feature", req("x86_64-linux", ["big-parallel"]), conf({ features: ["nsh", "big-parallel"] })],
    ["requires the mandatory feature", req("x86_64-linux", ["nsh"]), conf({ mandatory: ["nsh"] })],
    ["mandatory features count as offered", req("x86_64-linux", ["gpu"]), conf({ features: [], mandatory: ["gpu"] })],
    ["all mandatory features required, plus an offered one", req("aarch64-linux", ["a", "b", "nsh"]), conf({ system: "aarch64-linux", mandatory: ["a", "b"] })],
    ["duplicates in the request", req("x86_64-linux", ["nsh", "nsh"]), conf({ mandatory: ["nsh"] })],
  ])("%s", (_name, r, c) => expect(decide(r, c)).toEqual({ take: true }));
});

describe("declined, and the reason names what did not match", () => {
  test.each([
    ["another system", req("aarch64-darwin"), conf(), "its system is 'aarch64-darwin', the cluster's is 'x86_64-linux'"],
    ["builtin builder", req("builtin"), conf(), "it uses a builtin builder, which runs here, not as a cluster job"],
    ["builtin even when system = builtin", req("builtin"), conf({ system: "builtin" }), "builtin builder"],
    ["a feature the cluster lacks", req("x86_64-linux", ["kvm"]), conf(), "it requires the feature 'kvm' (the cluster offers 'nsh')"],
    ["two features the cluster lacks", req("x86_64-linux", ["kvm", "nsh", "big"]), conf(), "it requires features 'kvm', 'big' (the cluster offers 'nsh')"],
    ["no features offered at all", req("x86_64-linux", ["nsh"]), conf({ features: [] }), "it requires the feature 'nsh' (the cluster offers none)"],
    ["floating CA needs ca-derivations offered", req("x86_64-linux", ["ca-derivations"]), conf(), "the feature 'ca-derivations'"],
    ["mandatory feature not required", req("x86_64-linux"), conf({ mandatory: ["nsh"] }), "it does not require the mandatory feature 'nsh' (mandatory-system-features)"],
    ["one of two mandatory features missing", req("x86_64-linux", ["a"]), conf({ mandatory: ["a", "b"] }), "it does not require the mandatory feature 'b'"],
  ])("%s", (_name, r, c, reason) => {
    const d = decide(r, c);
    expect(d.take).toBe(false);
    expect(d.take ? "" : d.reason).toContain(reason);
  });

  test("every mismatch is named, not just the first", () => {
    const d = decide(req("i686-linux", ["kvm"]), conf({ mandatory: ["nsh"] }));
    expect(d).toEqual({
      take: false,
      reason:
        "its system is 'i686-linux', the cluster's is 'x86_64-linux'; it requires the feature 'kvm' (the cluster offers 'nsh'); it does not require the mandatory feature 'nsh' (mandatory-system-features)",
    });
  });
});

test("amWilling does not matter: the cluster is not this machine", () => {
  expect(decide({ ...req("x86_64-linux"), amWilling: false, drvPath: "/nix/store/x.drv" } as never, conf())).toEqual({ take: true });
});
