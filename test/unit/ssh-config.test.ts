import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  loadSshConfig,
  localContext,
  matchHostPatterns,
  parseSshConfig,
  resolveHost,
  SshConfigError,
} from "../../src/remote/ssh-config.ts";

const local = { home: "/home/me", user: "me", uid: 1000, env: { HOME: "/home/me", USER: "me", NODE_DIR: "/keys" } };
const parse = (text: string, includes: Record<string, string> = {}) =>
  parseSshConfig(text, {
    file: "cfg",
    local,
    readInclude: (p) => Object.keys(includes).sort().filter((f) => new Bun.Glob(p).match(f)).map((f) => ({ file: f, text: includes[f]! })),
  });
const resolve = (text: string, dest: string, includes?: Record<string, string>) => resolveHost(parse(text, includes), dest);

describe("host patterns", () => {
  test.each([
    [["node1"], "node1", true],
    [["node*"], "node17", true],
    [["node?"], "node17", false],
    [["node??"], "node17", true],
    [["*.example.com"], "a.example.com", true],
    [["*", "!bastion"], "bastion", false],
    [["*", "!bastion"], "node1", true],
    [["!bastion"], "node1", false], // a negation alone matches nothing
    [["a", "b", "c"], "b", true],
    [["Node1"], "node1", false], // case-sensitive, like OpenSSH (checked with ssh -G)
    [["10.0.0.*"], "10.0.0.5", true],
  ])("%p vs %p → %p", (patterns, host, want) => expect(matchHostPatterns(patterns, host)).toBe(want));
});

describe("resolveHost", () => {
  test("defaults", () => {
    const h = resolve("", "node1");
    expect(h).toMatchObject({
      alias: "node1",
      hostname: "node1",
      port: 22,
      user: "me",
      identityFiles: ["/home/me/.ssh/id_ed25519", "/home/me/.ssh/id_ecdsa", "/home/me/.ssh/id_rsa"],
      knownHostsFiles: ["/home/me/.ssh/known_hosts", "/home/me/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
      strictHostKeyChecking: "yes",
      identitiesOnly: false,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveIntervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: DEFAULT_KEEPALIVE_COUNT_MAX,
    });
  });

  const cfg = `
# comment
Host bastion
    HostName bastion.example.com
    User jump

Host node? "quoted*"
    HostName %h.cluster.local
    Port 2222
    IdentityFile ~/.ssh/cluster_%r@%h
    IdentityFile \${NODE_DIR}/%n-%p
    UserKnownHostsFile ~/.ssh/kh_cluster /etc/kh_%u
    StrictHostKeyChecking accept-new
    ConnectTimeout 7
    ServerAliveInterval 5
    ServerAliveCountMax 2

Host * !bastion
    User builder
    Port=2200
    IdentityFile %d/.ssh/default_key
    StrictHostKeyChecking no

Host *
    User fallback
    HostName ignored.example.com
`;
  test.each([
    ["bastion", { hostname: "bastion.example.com", user: "jump", port: 22, identityFiles: ["/home/me/.ssh/id_ed25519", "/home/me/.ssh/id_ecdsa", "/home/me/.ssh/id_rsa"], strictHostKeyChecking: "yes" }],
    ["node1", {
      hostname: "node1.cluster.local",
      user: "builder",
      port: 2222,
      identityFiles: ["/home/me/.ssh/cluster_builder@node1.cluster.local", "/keys/node1-2222", "/home/me/.ssh/default_key"],
      knownHostsFiles: ["/home/me/.ssh/kh_cluster", "/etc/kh_me", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
      userKnownHostsFiles: ["/home/me/.ssh/kh_cluster", "/etc/kh_me"],
      strictHostKeyChecking: "accept-new",
      connectTimeoutMs: 7000,
      keepaliveIntervalMs: 5000,
      keepaliveCountMax: 2,
    }],
    ["alice@node2:2022", { hostname: "node2.cluster.local", user: "alice", port: 2022, identityFiles: ["/home/me/.ssh/cluster_alice@node2.cluster.local", "/keys/node2-2022", "/home/me/.ssh/default_key"] }],
    ["quoted-x", { hostname: "quoted-x.cluster.local" }],
    ["other", { hostname: "ignored.example.com", user: "builder", port: 2200, strictHostKeyChecking: "no", identityFiles: ["/home/me/.ssh/default_key"] }],
    ["ssh://Other", { hostname: "ignored.example.com" }],
  ])("first obtained value wins: %p", (dest, want) => expect(resolve(cfg, dest)).toMatchObject(want));

  test("HostName is lower-cased; %h is the alias as given", () => {
    expect(resolve("Host Foo\n HostName %h.Example.COM\n", "Foo").hostname).toBe("foo.example.com");
    expect(resolve("HostName 100%%.x\n", "n").hostname).toBe("100%.x");
  });
  test("options before the first Host apply to all hosts", () => expect(resolve("User early\nHost x\nUser late\n", "x").user).toBe("early"));
  test("UserKnownHostsFile none and GlobalKnownHostsFile", () => {
    expect(resolve("UserKnownHostsFile none\nGlobalKnownHostsFile /g1 /g2\n", "x").knownHostsFiles).toEqual(["/g1", "/g2"]);
  });
  test("HostKeyAlias, IdentitiesOnly, IdentityAgent", () => {
    const h = resolveHost(parseSshConfig("HostKeyAlias lab\nIdentitiesOnly yes\nIdentityAgent ~/agent.sock\n", { local }), "x");
    expect(h).toMatchObject({ hostKeyAlias: "lab", identitiesOnly: true, identityAgent: "/home/me/agent.sock" });
    expect(resolve("IdentityAgent none\n", "x").identityAgent).toBe("none");
    expect(resolve("IdentityAgent SSH_AUTH_SOCK\n", "x").identityAgent).toBe("none"); // not set in this env
  });
  test("ServerAliveInterval 0 turns keepalives off", () => expect(resolve("ServerAliveInterval 0\n", "x").keepaliveIntervalMs).toBe(0));
  test("StrictHostKeyChecking ask cannot prompt: it refuses like yes", () => expect(resolve("StrictHostKeyChecking ask\n", "x").strictHostKeyChecking).toBe("yes"));
  test("Match all applies; other Match blocks are skipped with a warning", () => {
    const c = parse("Match host x\n  User m\nMatch all\n  User all\n");
    expect(resolveHost(c, "x").user).toBe("all");
    expect(c.warnings[0]).toMatch(/cfg:1: Match host x is not supported/);
  });
  test("unknown keywords are ignored", () => expect(resolve("BatchMode yes\nControlMaster auto\nUser u\n", "x").user).toBe("u"));

  test("Include: relative to ~/.ssh, globbed in lexical order, conditional inside a Host block", () => {
    const includes = {
      "/home/me/.ssh/conf.d/10-a": "Host a\n  User from-a\nHost *\n  Port 1001\n",
      "/home/me/.ssh/conf.d/20-b": "Host b\n  User from-b\n",
      "/etc/extra": "User from-extra\n",
    };
    const text = "Include conf.d/*\nHost z\n  Include /etc/extra\n  Port 3003\nHost *\n  User last\n";
    expect(resolve(text, "a", includes)).toMatchObject({ user: "from-a", port: 1001 });
    expect(resolve(text, "b", includes)).toMatchObject({ user: "from-b", port: 1001 });
    // the included file's "Host *" does not leak out: z's Port line is still under "Host z"
    expect(resolve(text, "z", includes)).toMatchObject({ user: "from-extra", port: 1001 });
    expect(resolve(text, "q", includes)).toMatchObject({ user: "last", port: 1001 });
  });

  test.each([
    ["Port abc\n", /cfg:1: bad Port value "abc"/],
    ["Host x\n  Port 70000\n", /cfg:2: bad Port value "70000"/],
    ["StrictHostKeyChecking maybe\n", /bad StrictHostKeyChecking/],
    ["ConnectTimeout -1\n", /bad ConnectTimeout/],
    ["User\n", /cfg:1: User needs a value/],
    ["Host\n", /Host needs at least one pattern/],
    ['HostName "unterminated\n', /unterminated quote/],
    ["what?\n", /cfg:1: cannot parse/],
  ])("bad config %p", (text, re) => {
    expect(() => parse(text)).toThrow(SshConfigError);
    expect(() => parse(text)).toThrow(re);
  });
  test.each([
    ["IdentityFile ~/k/%Q\n", /unsupported token %Q/],
    ["IdentityFile ${NOPE}/k\n", /NOPE is not set/],
    ["IdentityFile ~bob/k\n", /~user paths are not supported/],
  ])("bad expansion %p names the file and line", (text, re) => {
    expect(() => resolve(text, "x")).toThrow(re);
    expect(() => resolve(text, "x")).toThrow(/cfg:1/);
  });
  test("a bad destination names its text", () => expect(() => resolveHost(parse(""), "a:b")).toThrow('"a:b"'));
});

describe("local user", () => {
  test.each([
    [{ USER: "u1", LOGNAME: "l1" }, 1000, "u1"],
    [{ LOGNAME: "l1" }, 1000, "l1"],
    [{}, 0, "root"],
  ])("env %p uid %p → %p", (env, uid, user) => expect(localContext({ env, uid, home: "/h" }).user).toBe(user));
});

// Cross-check against OpenSSH itself: `ssh -G` prints what ssh would use.
const ssh = Bun.which("ssh");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-sshcfg-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
describe.skipIf(!ssh)("agrees with ssh -G", () => {
  const file = path.join(tmp, "config");
  fs.mkdirSync(path.join(tmp, "d"));
  fs.writeFileSync(path.join(tmp, "d", "inc.conf"), "Host inc*\n  User included\n  Port 4444\n");
  fs.writeFileSync(
    file,
    [
      `Include ${tmp}/d/*.conf`,
      "Host Web web?? !web99",
      "  HostName %h.Example.org",
      "  User www",
      "Host db*",
      "  Port 5432",
      "  UserKnownHostsFile ~/.ssh/kh_%h_%p %d/x",
      "Host *",
      "  User everyone",
      "  Port 2222",
      "",
    ].join("\n"),
  );
  const cases = ["Web", "web01", "web99", "db1", "inc1", "other", "ssh://bob@db2:99"]; // ssh takes a port only in ssh:// form
  test.each(cases)("%p", async (dest) => {
    const p = Bun.spawnSync(["ssh", "-F", file, "-G", dest], { stdin: "ignore", env: { ...process.env, HOME: os.homedir() } });
    const g = new Map<string, string>();
    for (const line of p.stdout.toString().split("\n")) {
      const i = line.indexOf(" ");
      if (i > 0 && !g.has(line.slice(0, i))) g.set(line.slice(0, i), line.slice(i + 1));
    }
    const h = resolveHost(loadSshConfig({ file }), dest);
    expect({ hostname: h.hostname, user: h.user, port: String(h.port), known: h.userKnownHostsFiles.join(" ") }).toEqual({
      hostname: g.get("hostname")!,
      user: g.get("user")!,
      port: g.get("port")!,
      known: g.get("userknownhostsfile")!,
    });
  });
});
