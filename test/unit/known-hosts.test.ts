import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  checkHostKey,
  fingerprintSha256,
  keyTypeOfBlob,
  knownHostsLine,
  parseKnownHosts,
  parsePublicKey,
  preferredHostKeyAlgorithms,
} from "../../src/remote/known-hosts.ts";

// Public keys made with ssh-keygen for these tests; fingerprints as `ssh-keygen -lf` printed them.
const A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/Bug4H/tR3V2hkgcY11QEE+DdoqSM8NhSAKwDh6W3N";
const B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExU7oGyRJell9dd+mTD2e+K2lhJNJH1BrrIwEGuIIFo";
const C = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBM5hJoF08WtRpU8QwDyz66xPsMevXrcJ1qHjT1k9Vd3ux/PrFdfTT91sRqiIhdTBqbkrvzKZFHJtbKDo+VwLGo0=";
const FP_A = "SHA256:+ByTJoNa3poaqzTzRNrne/IP/0QPpB6gAB8XkBZPWYU";
const FP_C = "SHA256:ZeANDqHmhcDA6Q3CQT1km1fXPmbKTXDzNGZUcLJpSPk";
const key = (k: string) => parsePublicKey(k);
const fpB = fingerprintSha256(key(B).keyBlob);

const KH = [
  "# comment", // 1
  `node1,10.0.0.1 ${A}`, // 2
  `[node2]:2222 ${A}`, // 3
  `*.example.com,!evil.example.com ${A}`, // 4
  `node3 ${B} old key`, // 5
  `node4 ${C}`, // 6
  `@cert-authority *.ca.test ${A}`, // 7
  `@revoked node5 ${B}`, // 8
  `node5 ${B}`, // 9
  "", // 10
].join("\n");
const entries = parseKnownHosts(KH, "kh").entries;
const check = (host: string, port: number, k: string, pinned?: string[]) => checkHostKey(entries, host, port, key(k).keyType, key(k).keyBlob, pinned);

describe("keys", () => {
  test("fingerprints are OpenSSH's SHA256 form", () => {
    expect(fingerprintSha256(key(A).keyBlob)).toBe(FP_A);
    expect(fingerprintSha256(key(C).keyBlob)).toBe(FP_C);
  });
  test("key type is read from the blob", () => expect(keyTypeOfBlob(key(C).keyBlob)).toBe("ecdsa-sha2-nistp256"));
  test.each([["ssh-ed25519"], ["ssh-ed25519 !!!"], [`ssh-rsa ${A.split(" ")[1]}`]])("bad public key %p", (t) => expect(() => parsePublicKey(t)).toThrow(JSON.stringify(t)));
  test("comment is kept", () => expect(parsePublicKey(`${A} me@host`).comment).toBe("me@host"));
});

describe("checkHostKey", () => {
  test.each([
    ["node1", 22, A, "kh:2"],
    ["NODE1", 22, A, "kh:2"],
    ["10.0.0.1", 22, A, "kh:2"],
    ["node2", 2222, A, "kh:3"],
    ["a.example.com", 22, A, "kh:4"],
    ["node4", 22, C, "kh:6"],
  ])("known: %p port %p", (host, port, k, via) => expect(check(host, port, k)).toEqual({ ok: true, via }));

  test.each([
    ["node1", 2222], // non-22 ports are stored as [host]:port
    ["node2", 22],
    ["evil.example.com", 22], // negated
    ["x.ca.test", 22], // @cert-authority lines never match a plain key
    ["unlisted", 22],
  ])("unknown: %p port %p", (host, port) => {
    const r = check(host, port, A);
    expect(r).toMatchObject({ ok: false, reason: "unknown-host" });
    if (!r.ok) {
      expect(r.message).toContain(FP_A);
      expect(r.message).toContain("known_hosts");
      expect(r.message).toContain("nsh.conf `trusted`");
      expect(r.message).toContain(knownHostsLine(host, port, "ssh-ed25519", key(A).keyBlob));
    }
  });

  test("mismatch shows the presented fingerprint and where the expected key is", () => {
    const r = check("node3", 22, A);
    expect(r).toMatchObject({ ok: false, reason: "mismatch" });
    if (!r.ok) {
      expect(r.message).toContain(`presented ED25519 key ${FP_A}`);
      expect(r.message).toContain(`kh:5 expects ED25519 key ${fpB}`);
      expect(r.message).toContain("ssh-keygen -R 'node3' -f kh");
    }
  });
  test("a host known only by another key type is unknown, and the message says so", () => {
    const r = check("node4", 22, A);
    expect(r).toMatchObject({ ok: false, reason: "unknown-host" });
    if (!r.ok) expect(r.message).toContain("only other key types for it: ECDSA at kh:6");
  });
  test("@revoked wins, even over a plain entry and a pin", () => {
    expect(check("node5", 22, B)).toMatchObject({ ok: false, reason: "revoked" });
    expect(check("node5", 22, B, [B])).toMatchObject({ ok: false, reason: "revoked" });
    const r = check("node5", 22, B);
    if (!r.ok) expect(r.message).toContain("kh:8");
  });

  describe("pinned keys (nsh.conf trusted)", () => {
    test("pin an unknown host", () => expect(check("unlisted", 22, A, [`${A} comment`])).toEqual({ ok: true, via: "nsh.conf trusted" }));
    test("any of several pins", () => expect(check("unlisted", 22, A, [B, A])).toMatchObject({ ok: true }));
    test("a pin is exclusive: known_hosts does not override it", () => {
      const r = check("node1", 22, A, [B]);
      expect(r).toMatchObject({ ok: false, reason: "mismatch" });
      if (!r.ok) expect(r.message).toContain(`nsh.conf \`trusted\` pins ED25519 key ${fpB}`);
    });
    test("a malformed pin never matches", () => expect(check("unlisted", 22, A, ["garbage"])).toMatchObject({ ok: false, reason: "unknown-host" }));
  });

  test("preferred host key algorithms follow the known or pinned types", () => {
    expect(preferredHostKeyAlgorithms(entries, "node4", 22)).toEqual(["ecdsa-sha2-nistp256"]);
    expect(preferredHostKeyAlgorithms(entries, "node1", 22)).toEqual(["ssh-ed25519"]);
    expect(preferredHostKeyAlgorithms(entries, "unlisted", 22)).toEqual([]);
    expect(preferredHostKeyAlgorithms(entries, "node4", 22, [A])).toEqual(["ssh-ed25519"]);
    expect(preferredHostKeyAlgorithms(parseKnownHosts("h ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAAQC7", "f").entries, "h", 22)).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  });
});

describe("parseKnownHosts", () => {
  test.each([
    ["node ssh-ed25519", /expected "hosts keytype key"/],
    ["node ssh-ed25519 !!notbase64", /not base64/],
    [`node ssh-rsa ${A.split(" ")[1]}`, /does not match the key's own type ssh-ed25519/],
    [`@bogus node ${A}`, /unknown marker @bogus/],
    [`|1|abc|def ${A}`, /malformed hashed host name/],
  ])("skips %p with a reason naming file:line", (line, re) => {
    const r = parseKnownHosts(`# c\n${line}\n`, "f");
    expect(r.entries).toEqual([]);
    expect(r.invalid[0]).toMatch(/^f:2: /);
    expect(r.invalid[0]).toMatch(re);
  });
  test("CRLF lines and comments", () => expect(parseKnownHosts(`# x\r\nnode1 ${A}\r\n`, "f").entries.length).toBe(1));
});

// Hashed entries: hash a file with ssh-keygen -H and check that nsh finds the same hosts as ssh-keygen -F.
const keygen = Bun.which("ssh-keygen");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-kh-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
describe.skipIf(!keygen)("hashed entries (ssh-keygen -H)", () => {
  const file = path.join(tmp, "known_hosts");
  fs.writeFileSync(file, `node1,10.0.0.1 ${A}\n[node2]:2222 ${A}\nnode3 ${B}\n`);
  const r = Bun.spawnSync(["ssh-keygen", "-q", "-H", "-f", file], { stdout: "ignore", stderr: "pipe" });
  const hashed = parseKnownHosts(fs.readFileSync(file, "utf8"), file);
  test("ssh-keygen hashed every host name", () => {
    expect(r.exitCode).toBe(0);
    expect(hashed.invalid).toEqual([]);
    expect(hashed.entries.length).toBe(4); // one line per name
    expect(hashed.entries.every((e) => e.hashed && !e.patterns)).toBe(true);
  });
  test.each([
    ["node1", 22, A, true],
    ["10.0.0.1", 22, A, true],
    ["node2", 2222, A, true],
    ["node2", 22, A, false],
    ["node4", 22, A, false],
  ])("%p port %p", (host, port, k, found) => {
    const res = checkHostKey(hashed.entries, host, port, "ssh-ed25519", key(k).keyBlob);
    expect(res.ok).toBe(found);
    const name = port === 22 ? host : `[${host}]:${port}`;
    const f = Bun.spawnSync(["ssh-keygen", "-F", name, "-f", file], { stdout: "pipe", stderr: "pipe" });
    expect(f.exitCode === 0).toBe(found);
  });
  test("a hashed mismatch still names the file and line", () => {
    const res = checkHostKey(hashed.entries, "node3", 22, "ssh-ed25519", key(A).keyBlob);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.message).toContain(`${file}:4`);
  });
  test("fingerprints agree with ssh-keygen -lf", () => {
    const pub = path.join(tmp, "c.pub");
    fs.writeFileSync(pub, `${C} c\n`);
    const out = Bun.spawnSync(["ssh-keygen", "-lf", pub]).stdout.toString();
    expect(out).toContain(fingerprintSha256(key(C).keyBlob));
  });
});
