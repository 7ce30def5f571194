// The shared directory nix-sigstop takes turns in: only a real directory of the user's own that nobody
// else can write is used; ours-but-open (what nix-sigstop made before, 1777) is tightened when it is the
// default and refused when the user named it; root shares /run/nix-sigstop, anyone else /tmp/nix-sigstop-<uid>.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultSharedDir, judgeSharedDir, openSharedDir, openTurnLock, touchEntry, type DirFacts } from "../../src/sigstop/shared-dir.ts";

const dir = (uid: number, mode: number): DirFacts => ({ kind: "directory", uid, mode: 0o40000 | mode });

describe("judgeSharedDir", () => {
  test.each([
    ["ours, 0700", dir(1000, 0o700), 1000, false, { use: true, tighten: false }],
    ["ours, 0755 (others may read, not write)", dir(1000, 0o755), 1000, false, { use: true, tighten: false }],
    ["ours, 1777, the default: tightened", dir(1000, 0o1777), 1000, true, { use: true, tighten: true }],
    ["ours, group-writable, the default: tightened", dir(1000, 0o770), 1000, true, { use: true, tighten: true }],
    ["ours, 1777, named by the user: refused", dir(1000, 0o1777), 1000, false, { use: false }],
    ["another user's, 0700", dir(1001, 0o700), 1000, true, { use: false }],
    ["root's sticky 1777, for a user", dir(0, 0o1777), 1000, true, { use: false }],
    ["a user's, for root", dir(1000, 0o700), 0, true, { use: false }],
    ["a symbolic link", { kind: "symlink", uid: 1000, mode: 0o120777 }, 1000, true, { use: false }],
    ["a plain file", { kind: "other", uid: 1000, mode: 0o100600 }, 1000, true, { use: false }],
  ] as const)("%s", (_n, facts, euid, mayTighten, want) => {
    expect(judgeSharedDir(facts as DirFacts, euid, mayTighten)).toMatchObject(want);
  });

  test("a refusal says why", () => {
    expect(judgeSharedDir(dir(1001, 0o700), 1000, true)).toEqual({ use: false, why: "it belongs to uid 1001, not to you (uid 1000)" });
    expect(judgeSharedDir(dir(1000, 0o1777), 1000, false)).toMatchObject({ why: expect.stringContaining("mode 1777") });
  });
});

describe("defaultSharedDir", () => {
  test.each([
    [0, true, "/run/nix-sigstop"],
    [0, false, "/tmp/nix-sigstop-0"],
    [1000, true, "/tmp/nix-sigstop-1000"],
  ] as const)("uid %p, /run there: %p", (uid, run, want) => expect(defaultSharedDir(uid, run)).toBe(want));
});

describe("openSharedDir (as root here: root is 'us', uid 65534 'another user')", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-shared-dir-"));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

  test("a missing directory is made 0700 with its subdirectories", () => {
    const d = path.join(root, "new", "shared");
    const s = openSharedDir(d, false);
    expect(mode(d)).toBe(0o700);
    expect(mode(path.join(d, "stopped"))).toBe(0o700);
    touchEntry(path.join(s.path, "stopped"), "123");
    expect(fs.existsSync(path.join(d, "stopped", "123"))).toBe(true);
    const fd = openTurnLock(s.path);
    fs.closeSync(fd);
    expect(mode(path.join(d, "resume.lock"))).toBe(0o600);
  });

  test("a symbolic link is refused", () => {
    const target = path.join(root, "target");
    fs.mkdirSync(target);
    fs.symlinkSync(target, path.join(root, "link"));
    expect(() => openSharedDir(path.join(root, "link"), true)).toThrow("symbolic link");
  });

  test("another user's directory is refused", () => {
    const d = path.join(root, "theirs");
    fs.mkdirSync(d, { mode: 0o700 });
    fs.chownSync(d, 65534, 65534);
    expect(() => openSharedDir(d, true)).toThrow("belongs to uid 65534");
  });

  test("ours but 1777: the default is tightened, a named one refused", () => {
    const d = path.join(root, "open");
    fs.mkdirSync(d);
    fs.chmodSync(d, 0o1777);
    expect(() => openSharedDir(d, false)).toThrow("others can write to it");
    openSharedDir(d, true);
    expect(mode(d)).toBe(0o700);
  });

  test("a planted symbolic link is neither followed nor replaced", () => {
    const d = path.join(root, "planted");
    const s = openSharedDir(d, false);
    const victim = path.join(root, "victim-file");
    fs.writeFileSync(victim, "precious", { mode: 0o600 });
    fs.symlinkSync(victim, path.join(d, "resume.lock"));
    fs.symlinkSync(victim, path.join(d, "stopped", "77"));
    expect(() => openTurnLock(s.path)).toThrow();
    touchEntry(path.join(s.path, "stopped"), "77");
    expect(fs.readFileSync(victim, "utf8")).toBe("precious");
    expect(mode(victim)).toBe(0o600);
  });
});
