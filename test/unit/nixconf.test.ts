import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type NixConfSetting,
  loadNixConf,
  nixConfDir,
  parseNixConf,
  resolveNixConfFiles,
  settingBool,
  settingInt,
  settingList,
} from "../../src/config/nixconf.ts";

const noFiles = () => undefined;
const files = (tree: Record<string, string>) => (p: string) => tree[p];
const values = (m: Map<string, NixConfSetting>) => Object.fromEntries([...m].map(([k, v]) => [k, v.value]));

describe("parseNixConf lines", () => {
  test.each<[string, string, Record<string, string>]>([
    ["plain", "max-jobs = 4", { "max-jobs": "4" }],
    ["whitespace trimmed and collapsed", "  substituters =\thttps://a   https://b  \r", { substituters: "https://a https://b" }],
    ["empty value", "builders =", { builders: "" }],
    ["comment line", "# max-jobs = 4\n", {}],
    ["comment mid-line", "max-jobs = 4 # four\ncores = 2#two", { "max-jobs": "4", cores: "2" }],
    ["hash inside a value cuts it", "x = a#b c", { x: "a" }],
    ["later wins", "max-jobs = 1\nmax-jobs = 2", { "max-jobs": "2" }],
    ["extra- appends", "system-features = kvm\nextra-system-features = big-parallel nixos-test", { "system-features": "kvm big-parallel nixos-test" }],
    ["set after extra- overrides", "extra-x = a\nx = b", { x: "b" }],
    ["extra- with empty value", "x = a\nextra-x =", { x: "a" }],
    ["blank lines and CRLF", "\r\n\n  \na = 1\r\nb = 2\r\n", { a: "1", b: "2" }],
    ["= inside value", "x = a=b = c", { x: "a=b = c" }],
  ])("%s", (_name, text, expected) => {
    const r = parseNixConf(text, "/etc/nix/nix.conf", noFiles);
    expect(r.errors).toEqual([]);
    expect(values(r.settings)).toEqual(expected);
  });

  test("locations and appendToDefault", () => {
    const r = parseNixConf("a = 1\n\nextra-b = x\nextra-b = y\nextra-a = 2\n", "/c/nix.conf", noFiles);
    expect(r.settings.get("a")).toEqual({ value: "1 2", file: "/c/nix.conf", line: 5 });
    expect(r.settings.get("b")).toEqual({ value: "x y", file: "/c/nix.conf", line: 4, appendToDefault: true });
  });

  test.each<[string, string]>([
    ["max-jobs", "expected 'name = value', 'include path' or '!include path', got 'max-jobs'"],
    ["max-jobs 4", "expected 'name = value', 'include path' or '!include path', got 'max-jobs 4'"],
    ["max-jobs=4", "expected 'name = value', 'include path' or '!include path', got 'max-jobs=4' (Nix needs whitespace around '=')"],
    ["max-jobs= 4", "expected 'name = value', 'include path' or '!include path', got 'max-jobs= 4' (Nix needs whitespace around '=')"],
    ["= 4", "expected 'name = value', 'include path' or '!include path', got '= 4'"],
    ["include", "'include' takes exactly one path, got 'include'"],
    ["include a b", "'include' takes exactly one path, got 'include a b'"],
    ["include = x", "'include' takes exactly one path, got 'include = x'"],
    ["!include a b # c", "'!include' takes exactly one path, got '!include a b'"],
    ["extra- = x", "'extra-' names no setting"],
  ])("bad line %j", (line, message) => {
    const r = parseNixConf(`ok = 1\n${line}\nalso = 2`, "/etc/nsh/nsh.conf", noFiles);
    expect(r.errors).toEqual([{ file: "/etc/nsh/nsh.conf", line: 2, message: `/etc/nsh/nsh.conf:2: ${message}` }]);
    // Parsing goes on past a bad line.
    expect(values(r.settings)).toEqual({ ok: "1", also: "2" });
  });

  test("a key set twice in one file warns (as Lix does)", () => {
    const r = parseNixConf("a = 1\na = 2\nextra-a = 3", "/n.conf", noFiles);
    expect(r.warnings).toEqual(["/n.conf:2: 'a' is set again; the value from line 1 is discarded"]);
    expect(r.settings.get("a")?.value).toBe("2 3");
  });

  test("into: continues from earlier files", () => {
    const first = parseNixConf("a = 1\nb = 1", "/etc/nix/nix.conf", noFiles);
    const second = parseNixConf("extra-a = 2\nb = 3", "/home/u/.config/nix/nix.conf", noFiles, { into: first.settings });
    expect(values(second.settings)).toEqual({ a: "1 2", b: "3" });
    expect(second.settings.get("b")?.file).toBe("/home/u/.config/nix/nix.conf");
    expect(values(first.settings)).toEqual({ a: "1", b: "1" }); // not mutated
    expect(second.warnings).toEqual([]); // duplicate warnings are per file
  });
});

describe("include", () => {
  const tree = {
    "/etc/nix/machines.conf": "builders = @/etc/nix/machines\ncores = 8",
    "/etc/nix/sub/deep.conf": "!include ../machines.conf\nextra-cores = 9",
    "/etc/nix/loop.conf": "include /etc/nix/nix.conf",
    "/home/u/x.conf": "from-home = yes",
  };

  test.each<[string, Record<string, string>]>([
    ["cores = 1\ninclude machines.conf", { cores: "8", builders: "@/etc/nix/machines" }],
    ["include machines.conf\ncores = 1", { cores: "1", builders: "@/etc/nix/machines" }],
    ["include ./sub/../machines.conf", { cores: "8", builders: "@/etc/nix/machines" }],
    ["include /etc/nix/machines.conf", { cores: "8", builders: "@/etc/nix/machines" }],
    ["include sub/deep.conf", { cores: "8 9", builders: "@/etc/nix/machines" }],
    ["!include missing.conf\na = 1", { a: "1" }],
  ])("%j", (text, expected) => {
    const r = parseNixConf(text, "/etc/nix/nix.conf", files(tree));
    expect(r.errors).toEqual([]);
    expect(values(r.settings)).toEqual(expected);
  });

  test("settings remember the included file and line", () => {
    const r = parseNixConf("include sub/deep.conf", "/etc/nix/nix.conf", files(tree));
    expect(r.settings.get("builders")).toEqual({ value: "@/etc/nix/machines", file: "/etc/nix/machines.conf", line: 1 });
    expect(r.settings.get("cores")).toEqual({ value: "8 9", file: "/etc/nix/sub/deep.conf", line: 2 });
  });

  test("missing include is an error naming the including file", () => {
    const r = parseNixConf("a = 1\ninclude missing.conf", "/etc/nix/nix.conf", files(tree));
    expect(r.errors.map((e) => e.message)).toEqual([
      "/etc/nix/nix.conf:2: file '/etc/nix/missing.conf' included from '/etc/nix/nix.conf' not found",
    ]);
  });

  test("include loops are stopped", () => {
    const r = parseNixConf("include loop.conf", "/etc/nix/nix.conf", files(tree));
    expect(r.errors.map((e) => e.message)).toEqual([
      "/etc/nix/loop.conf:1: include of '/etc/nix/nix.conf' loops (/etc/nix/nix.conf -> /etc/nix/loop.conf -> /etc/nix/nix.conf)",
    ]);
  });

  test("relative include from NIX_CONFIG is refused, absolute is fine", () => {
    const r = parseNixConf("include x.conf\ninclude /etc/nix/machines.conf", "NIX_CONFIG", files(tree));
    expect(r.errors.map((e) => e.message)).toEqual([
      "NIX_CONFIG:1: cannot include relative path 'x.conf' from NIX_CONFIG, which is not a file",
    ]);
    expect(r.settings.get("cores")?.value).toBe("8");
  });

  test("~/ expands only when a home is given (Lix, user files)", () => {
    const withHome = parseNixConf("include ~/x.conf", "/home/u/.config/nix/nix.conf", files(tree), { home: "/home/u" });
    expect(values(withHome.settings)).toEqual({ "from-home": "yes" });
    const without = parseNixConf("!include ~/x.conf", "/etc/nix/nix.conf", files(tree));
    expect(without.settings.size).toBe(0);
  });
});

describe("resolveNixConfFiles", () => {
  const all = () => true;
  test.each<[string, Record<string, string | undefined>, string[]]>([
    ["defaults", { HOME: "/home/u" }, ["/etc/nix/nix.conf", "/etc/xdg/nix/nix.conf", "/home/u/.config/nix/nix.conf"]],
    [
      "NIX_CONF_DIR and XDG dirs, lowest priority first",
      { HOME: "/home/u", NIX_CONF_DIR: "/opt/nix", XDG_CONFIG_DIRS: "/a:/b::", XDG_CONFIG_HOME: "/cfg" },
      ["/opt/nix/nix.conf", "/b/nix/nix.conf", "/a/nix/nix.conf", "/cfg/nix/nix.conf"],
    ],
    ["empty NIX_CONF_DIR is the default", { NIX_CONF_DIR: "", XDG_CONFIG_DIRS: "" }, ["/etc/nix/nix.conf"]],
    [
      "NIX_USER_CONF_FILES replaces the XDG files, applied last to first",
      { HOME: "/home/u", NIX_USER_CONF_FILES: "/one.conf:/two.conf", XDG_CONFIG_HOME: "/cfg" },
      ["/etc/nix/nix.conf", "/two.conf", "/one.conf"],
    ],
    ["empty NIX_USER_CONF_FILES means no user files", { HOME: "/home/u", NIX_USER_CONF_FILES: "" }, ["/etc/nix/nix.conf"]],
    ["no HOME, no XDG_CONFIG_HOME", {}, ["/etc/nix/nix.conf", "/etc/xdg/nix/nix.conf"]],
    ["empty XDG_CONFIG_HOME is taken literally, like Nix", { XDG_CONFIG_HOME: "", XDG_CONFIG_DIRS: "" }, ["/etc/nix/nix.conf", "/nix/nix.conf"]],
    [
      "NIX_CONFIG_HOME (Nix 2.25+) replaces $XDG_CONFIG_HOME/nix",
      { HOME: "/home/u", NIX_CONFIG_HOME: "/nch", XDG_CONFIG_HOME: "/cfg" },
      ["/etc/nix/nix.conf", "/etc/xdg/nix/nix.conf", "/nch/nix.conf"],
    ],
  ])("%s", (_name, env, expected) => {
    expect(resolveNixConfFiles(env, all)).toEqual(expected);
  });

  test("only existing files are listed", () => {
    const exists = (p: string) => p !== "/etc/xdg/nix/nix.conf";
    expect(resolveNixConfFiles({ HOME: "/h" }, exists)).toEqual(["/etc/nix/nix.conf", "/h/.config/nix/nix.conf"]);
  });

  test("NIX_CONFIG_HOME can be ignored for older Nix and Lix", () => {
    const env = { HOME: "/h", NIX_CONFIG_HOME: "/nch", XDG_CONFIG_DIRS: "" };
    expect(resolveNixConfFiles(env, all, { nixConfigHome: false })).toEqual(["/etc/nix/nix.conf", "/h/.config/nix/nix.conf"]);
  });

  test("nixConfDir", () => {
    expect(nixConfDir({})).toBe("/etc/nix");
    expect(nixConfDir({ NIX_CONF_DIR: "/x" })).toBe("/x");
  });
});

describe("value parsers", () => {
  test.each<[string, boolean]>([
    ["true", true],
    ["yes", true],
    ["1", true],
    ["false", false],
    ["no", false],
    ["0", false],
  ])("bool %s", (v, expected) => {
    expect(settingBool(v, "nsh.conf", 3)).toEqual({ ok: true, value: expected });
  });

  test.each(["True", "on", "", "2"])("bad bool %j", (v) => {
    expect(settingBool(v, "nsh.conf", 3, "sandbox")).toEqual({
      ok: false,
      error: { file: "nsh.conf", line: 3, message: `nsh.conf:3: 'sandbox' expects a Boolean (true/false, yes/no, 1/0), got '${v}'` },
    });
  });

  test.each<[string, number]>([
    ["0", 0],
    ["42", 42],
    ["+7", 7],
    ["-3", -3],
    ["007", 7],
  ])("int %s", (v, expected) => {
    expect(settingInt(v, "nsh.conf", 1)).toEqual({ ok: true, value: expected });
  });

  test("bad ints name file, line and setting", () => {
    const lots = settingInt("lots", "nsh.conf", 12, "max-jobs");
    expect(lots.ok ? undefined : lots.error.message).toBe("nsh.conf:12: 'max-jobs' expects an integer, got 'lots'");
    for (const v of ["", "1.5", "1e3", " 1", "0x10", "9007199254740993"]) {
      expect(settingInt(v, "f", 1).ok).toBe(false);
    }
    const neg = settingInt("-1", "f", 2, "cores", { min: 0 });
    expect(neg.ok ? undefined : neg.error.message).toBe(
      "f:2: 'cores' expects an integer from 0 to 9007199254740991, got '-1'",
    );
    const anon = settingInt("x", "f", 2);
    expect(anon.ok ? undefined : anon.error.message).toBe("f:2: expected an integer, got 'x'");
  });

  test("list", () => {
    expect(settingList(" a  b\tc ", "f", 1)).toEqual({ ok: true, value: ["a", "b", "c"] });
    expect(settingList("", "f", 1)).toEqual({ ok: true, value: [] });
  });
});

describe("loadNixConf (reads files)", () => {
  test("merges system, user files and NIX_CONFIG in Nix's order", () => {
    const dir = mkdtempSync(join(tmpdir(), "nsh-nixconf-"));
    try {
      mkdirSync(join(dir, "etc"));
      writeFileSync(join(dir, "etc/nix.conf"), "cores = 1\nsystem-features = kvm\n!include local.conf\n");
      writeFileSync(join(dir, "etc/local.conf"), "max-jobs = 2\n");
      writeFileSync(join(dir, "one.conf"), "cores = 5\n");
      writeFileSync(join(dir, "two.conf"), "cores = 6\nextra-system-features = big-parallel\n");
      const r = loadNixConf({
        NIX_CONF_DIR: join(dir, "etc"),
        NIX_USER_CONF_FILES: `${join(dir, "one.conf")}:${join(dir, "missing.conf")}:${join(dir, "two.conf")}`,
        NIX_CONFIG: "extra-system-features = nixos-test\nbad line",
      });
      expect(r.files).toEqual([join(dir, "etc/nix.conf"), join(dir, "two.conf"), join(dir, "one.conf")]);
      expect(values(r.settings)).toEqual({ cores: "5", "system-features": "kvm big-parallel nixos-test", "max-jobs": "2" });
      expect(r.settings.get("max-jobs")?.file).toBe(join(dir, "etc/local.conf"));
      expect(r.errors.map((e) => e.message)).toEqual([
        "NIX_CONFIG:2: expected 'name = value', 'include path' or '!include path', got 'bad line'",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
