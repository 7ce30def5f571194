// The ssh relay's words (pure): request and reply lines round-trip; malformed, wrong-version and
// too-long lines are refused with a message saying what is wrong; the relay's key differs whenever
// the ssh settings or what changes how ssh resolves (uid, HOME, USER, SSH_AUTH_SOCK, the program)
// differ, so such hooks never share a relay; only the ssh settings are handed to the relay (never
// the rest of nsh.conf, a JWT perhaps); and the relay directory must be ours and private.
import { expect, test } from "bun:test";
import {
  encodeRelayReply, encodeRelayRequest, parseRelayReply, parseRelayRequest, RELAY_MAX_LINE, RelayProtocolError,
  relayDirProblem, relayKey, relaySettings,
} from "../../src/remote/ssh-relay-protocol.ts";

const strip = (line: string) => line.replace(/\n$/, "");

test.each([
  [{ dest: "nshlab", socketPath: "/tmp/job/agent.sock" }],
  [{ dest: "root@node1:2222", socketPath: "/scratch/nsh/jobs/x y/agent.sock" }],
])("request %j round-trips as one line", (req) => {
  const line = encodeRelayRequest(req);
  expect(line.endsWith("\n")).toBe(true);
  expect(line.slice(0, -1)).not.toContain("\n");
  expect(parseRelayRequest(strip(line))).toEqual(req);
});

test.each([
  [{ ok: true as const, warnings: [] }],
  [{ ok: true as const, warnings: ["added the unknown host key … (accept-new)"] }],
  [{ ok: false as const, error: "cannot connect to /x/agent.sock on node1: open failed", warnings: [] }],
])("reply %j round-trips", (reply) => {
  expect(parseRelayReply(strip(encodeRelayReply(reply)))).toEqual(reply);
});

test.each([
  ["", /not JSON/],
  ["hello", /not JSON/],
  ["[1,2]", /expected a JSON object/],
  ['{"dest":"a","path":"/s"}', /protocol version undefined, expected 1/],
  ['{"v":2,"dest":"a","path":"/s"}', /protocol version 2/],
  ['{"v":1,"path":"/s"}', /'dest' must be a non-empty string/],
  ['{"v":1,"dest":"","path":"/s"}', /'dest' must be a non-empty string/],
  ['{"v":1,"dest":"a","path":"relative.sock"}', /'path' must be an absolute socket path/],
  ['{"v":1,"dest":"a","path":"/s\\u0000x"}', /'path' must be an absolute socket path/],
  [`{"v":1,"dest":"${"a".repeat(RELAY_MAX_LINE)}","path":"/s"}`, /longer than 16384 bytes/],
])("request %j is refused: %s", (line, message) => {
  expect(() => parseRelayRequest(line)).toThrow(RelayProtocolError);
  expect(() => parseRelayRequest(line)).toThrow(message);
});

test.each([
  ['{"v":1}', /expected ok true, or ok false with an 'error' message/],
  ['{"v":1,"ok":false}', /expected ok true, or ok false/],
  ['{"v":1,"ok":true,"warnings":"x"}', /'warnings' must be a list of strings/],
  ['{"v":1,"ok":true,"warnings":[1]}', /'warnings' must be a list of strings/],
  ["SSH-2.0-OpenSSH_9.2", /not JSON/],
])("reply %j is refused: %s", (line, message) => {
  expect(() => parseRelayReply(line)).toThrow(message);
});

const settings = { "ssh-config": "", trusted: [] as string[], "ssh-connect-timeout": 15 };
const id = { uid: 1000, home: "/home/a", user: "a", authSock: "/run/a/agent", executable: "/usr/bin/nsh" };
const base = relayKey(settings, id);

test.each([
  ["ssh-config", relayKey({ ...settings, "ssh-config": "/etc/nsh/ssh_config" }, id)],
  ["trusted", relayKey({ ...settings, trusted: ["node1", "ssh-ed25519", "AAAA"] }, id)],
  ["ssh-connect-timeout", relayKey({ ...settings, "ssh-connect-timeout": 5 }, id)],
  ["uid", relayKey(settings, { ...id, uid: 0 })],
  ["HOME", relayKey(settings, { ...id, home: "/root" })],
  ["USER", relayKey(settings, { ...id, user: "b" })],
  ["no USER", relayKey(settings, { ...id, user: undefined })],
  ["SSH_AUTH_SOCK", relayKey(settings, { ...id, authSock: "/tmp/other" })],
  ["no SSH_AUTH_SOCK", relayKey(settings, { ...id, authSock: undefined })],
  ["the program", relayKey(settings, { ...id, executable: "/opt/nsh-2/bin/nsh" })],
])("a different %s gives another relay", (_what, key) => {
  expect(key).not.toBe(base);
});

test("the same settings and identity give the same short key", () => {
  expect(relayKey({ ...settings }, { ...id })).toBe(base);
  expect(base).toMatch(/^[0-9a-f]{20}$/);
});

test.each([
  [{ isDirectory: true, uid: 1000, mode: 0o40700 }, undefined],
  [{ isDirectory: true, uid: 1000, mode: 0o40750 }, "is accessible to group or others (mode 750)"],
  [{ isDirectory: true, uid: 1000, mode: 0o41777 }, "is accessible to group or others (mode 777)"],
  [{ isDirectory: true, uid: 0, mode: 0o40700 }, "belongs to uid 0, not 1000"],
  [{ isDirectory: false, uid: 1000, mode: 0o120777 }, "is not a directory"],
])("relay directory %j: %s", (st, problem) => {
  expect(relayDirProblem(st, 1000)).toBe(problem);
});

test("only the ssh settings go to the relay, not the rest of nsh.conf", () => {
  const conf = { ...settings, "ssh-config": "/etc/nsh/ssh_config", "slurm-jwt-token": "header.payload.signature" };
  const handed = relaySettings(conf);
  expect(handed).toEqual({ "ssh-config": "/etc/nsh/ssh_config", trusted: [], "ssh-connect-timeout": 15 });
  expect(JSON.stringify(handed)).not.toContain("payload");
});
