// Expected: `nsh doctor` says when Nix will not run nsh although nix.conf asks it to:
//   - Nix 2.25–2.33 with build-hook = nsh in the system nix.conf: a failed check that names the bug
//     and what to do instead (nix-daemon --option build-hook, NIX_CONFIG, external-builders on
//     ≥ 2.32, Nix ≥ 2.34); Nix 2.8, 2.24, 2.34 and Lix: the same nix.conf is fine;
//   - a user who is not in trusted-users and has no build-hook = nsh in the system nix.conf (or sets
//     it only in their own nix.conf / --option): a failed check saying the daemon ignores it silently;
//     a trusted user, or root on a local store, is told that --option build-hook works.
import { describe, expect, test } from "bun:test";
import { type NixHookFacts, isTrusted, nixHookChecks } from "../../src/cli/doctor-nix.ts";
import { ignoresSystemBuildHook, parseNixVersion } from "../../src/nix/version.ts";

const NSH = "/usr/local/bin/nsh";
const v = (line: string) => parseNixVersion(line);
const facts = (over: Partial<NixHookFacts>): NixHookFacts => ({
  version: v("nix-store (Nix) 2.26.3"),
  systemHook: { value: NSH, file: "/etc/nix/nix.conf" },
  userHook: undefined,
  viaDaemon: true,
  user: "alice",
  groups: ["alice", "users"],
  trustedUsers: ["root"],
  nshPath: NSH,
  ...over,
});
const verdicts = (f: NixHookFacts) => nixHookChecks(f).map((c) => `${c.ok ? "ok" : "FAIL"} ${c.what}`);

describe("which Nix ignores build-hook in the system nix.conf", () => {
  test.each([
    ["nix-store (Nix) 2.8.0", false],
    ["nix (Nix) 2.24.15", false],
    ["nix (Nix) 2.25.0", true],
    ["nix-store (Nix) 2.26.3", true],
    ["nix (Nix) 2.33.1", true],
    ["nix-store (Nix) 2.34.8", false],
    ["nix (Lix, like Nix) 2.91.1", false],
  ])("%s → %s", (line, want) => expect(ignoresSystemBuildHook(v(line))).toBe(want));
});

describe("checks", () => {
  test.each<[string, Partial<NixHookFacts>, string[]]>([
    ["2.26, system nix.conf runs nsh", {}, ["FAIL build-hook"]],
    ["2.34, system nix.conf runs nsh", { version: v("nix-store (Nix) 2.34.8") }, ["ok build-hook"]],
    ["2.8, system nix.conf runs nsh", { version: v("nix-store (Nix) 2.8.0") }, ["ok build-hook"]],
    ["2.8, nothing set, untrusted", { version: v("nix-store (Nix) 2.8.0"), systemHook: undefined }, ["FAIL build-hook from you"]],
    ["2.8, nothing set, trusted by group", { version: v("nix-store (Nix) 2.8.0"), systemHook: undefined, trustedUsers: ["root", "@users"] }, ["ok build-hook"]],
    ["2.8, user nix.conf only, untrusted", { version: v("nix-store (Nix) 2.8.0"), systemHook: undefined, userHook: { value: NSH, file: "~/.config/nix/nix.conf" } }, ["FAIL build-hook from you"]],
    ["2.8, user nix.conf, trusted", { version: v("nix-store (Nix) 2.8.0"), systemHook: undefined, userHook: { value: NSH, file: "u" }, trustedUsers: ["*"] }, ["ok build-hook from you"]],
    ["root on a local store", { version: v("nix-store (Nix) 2.26.3"), systemHook: undefined, viaDaemon: false, user: "root" }, ["ok build-hook"]],
    ["2.26, system nix.conf runs something else, untrusted", { systemHook: { value: "/usr/bin/nix __build-remote", file: "/etc/nix/nix.conf" } }, ["FAIL build-hook from you"]],
    ["no Nix", { version: undefined }, ["FAIL build-hook"]],
  ])("%s", (_what, over, want) => expect(verdicts(facts(over))).toEqual(want));

  test("the 2.25–2.33 message names the bug and the ways around it", () => {
    const [c] = nixHookChecks(facts({ version: v("nix (Nix) 2.32.0") }));
    expect(c!.detail).toContain("ignores build-hook '/usr/local/bin/nsh' (/etc/nix/nix.conf)");
    expect(c!.detail).toContain("2.25–2.33");
    expect(c!.detail).toContain("--option build-hook");
    expect(c!.detail).toContain("external-builders");
    expect(c!.detail).toContain("Nix ≥ 2.34");
  });

  test("an untrusted user is told the daemon ignores it silently, and what to do", () => {
    const [c] = nixHookChecks(facts({ version: v("nix-store (Nix) 2.8.0"), systemHook: undefined }));
    expect(c!.detail).toContain("ignores `--option build-hook <nsh>` from user alice (Nix 2.8 without a word");
    expect(c!.detail).toContain("add alice to trusted-users");
  });
});

test.each([
  [["root"], "root", [], true],
  [["root"], "alice", ["users"], false],
  [["@users"], "alice", ["users"], true],
  [["*"], "bob", [], true],
])("trusted-users %j, %s in %j → %s", (list, user, groups, want) => expect(isTrusted(list, user, groups)).toBe(want));
