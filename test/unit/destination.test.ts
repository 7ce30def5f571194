import { describe, expect, test } from "bun:test";
import { DestinationError, formatDestination, parseDestination, parseDestinations } from "../../src/remote/destination.ts";

describe("parseDestination", () => {
  test.each([
    ["node1", { host: "node1" }],
    ["root@node1", { user: "root", host: "node1" }],
    ["node1:2222", { host: "node1", port: 2222 }],
    ["alice@node1.example.com:22", { user: "alice", host: "node1.example.com", port: 22 }],
    ["ssh://node1", { host: "node1" }],
    ["ssh://bob@node1:2200", { user: "bob", host: "node1", port: 2200 }],
    ["SSH://node1/", { host: "node1" }],
    ["[::1]:2222", { host: "::1", port: 2222 }],
    ["[::1]", { host: "::1" }],
    ["root@[fe80::1%eth0]:22", { user: "root", host: "fe80::1%eth0", port: 22 }],
    ["ssh://root@[2001:db8::7]:2022", { user: "root", host: "2001:db8::7", port: 2022 }],
    ["::1", { host: "::1" }],
    ["user@corp@bastion", { user: "user@corp", host: "bastion" }],
    ["  10.0.0.5  ", { host: "10.0.0.5" }],
  ])("%p", (text, want) => {
    const d = parseDestination(text);
    expect({ user: d.user, host: d.host, port: d.port }).toEqual({ user: undefined, port: undefined, ...want });
    expect(d.text).toBe(text.trim());
  });

  test.each([
    ["", /empty/],
    ["node1:", /port "" is not a number/],
    ["node1:ssh", /port "ssh" is not a number/],
    ["node1:70000", /out of range/],
    ["node1:0", /out of range/],
    ["@node1", /empty user name/],
    ["root@", /empty host name/],
    ["[::1", /missing '\]'/],
    ["[::1]x", /after '\]'/],
    ["[node1]:22", /not an IPv6 address/],
    ["http://node1", /unsupported scheme http/],
    ["ssh://node1/path", /path or query/],
    ["ssh://node1?remote-store=x", /path or query/],
    ["fe80::1:abcz", /need brackets/],
    ["node 1", /bad host name/],
    ["-oProxyCommand=x", /cannot start with '-'/],
  ])("rejects %p", (text, re) => {
    expect(() => parseDestination(text)).toThrow(DestinationError);
    expect(() => parseDestination(text)).toThrow(re);
    // errors name the bad text
    if (text.trim() !== "") expect(() => parseDestination(text)).toThrow(JSON.stringify(text.trim()));
  });
});

describe("parseDestinations", () => {
  test("comma-separated and repeated values keep their order", () => {
    expect(parseDestinations(["a,root@b:2222", "ssh://c", "[::1]:22"]).map((d) => formatDestination(d))).toEqual([
      "a",
      "root@b:2222",
      "c",
      "[::1]:22",
    ]);
  });
  test("spaces around commas are fine", () => expect(parseDestinations("a , b").map((d) => d.host)).toEqual(["a", "b"]));
  test("an empty entry is an error naming the list", () => expect(() => parseDestinations("a,,b")).toThrow('"a,,b": empty entry'));
  test("a bad entry names that entry", () => expect(() => parseDestinations("a,b:x")).toThrow('"b:x"'));
  test("nothing is an error", () => expect(() => parseDestinations([])).toThrow(/no ssh destination/));
});

describe("formatDestination", () => {
  test.each([
    [{ host: "a" }, "a"],
    [{ user: "u", host: "a", port: 22 }, "u@a:22"],
    [{ host: "::1", port: 2222 }, "[::1]:2222"],
    [{ host: "::1" }, "[::1]"],
  ])("%p → %p", (d, s) => {
    expect(formatDestination(d)).toBe(s);
    const back = parseDestination(s);
    expect(formatDestination(back)).toBe(s);
  });
});
