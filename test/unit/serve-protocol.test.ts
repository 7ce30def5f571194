import { describe, expect, test } from "bun:test";
import { parseDerivation } from "../../src/nix/derivation.ts";
import {
  DEFAULT_BUILD_OPTIONS,
  ServeProtocolError,
  basicDerivation,
  buildStatusName,
  encodeAddToStoreNar,
  encodeBasicDerivation,
  encodeBuildOptions,
  encodeHello,
  encodeQueryValidPaths,
  isBuildSuccess,
  negotiatedMinor,
  pathWithOutputs,
  readAck,
  readBuildPathsResult,
  readBuildResult,
  readHello,
  readPathInfos,
} from "../../src/nix/serve-protocol.ts";
import { WireReader, concat, encodeString, encodeStrings, encodeU64 } from "../../src/nix/wire.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const u = (n: number) => hex(encodeU64(n));
const reader = (...parts: Uint8Array[]) => WireReader.fromBytes(concat(parts));
const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

// Replies of Nix 2.8's `nix-store --serve --write` (client 2.7) in a store at /tmp/nx/s, after the
// handshake, for the two-output derivation below: QueryPathInfos of the .drv, BuildDerivation of it.
const STORE = "/tmp/nx/s";
const DRV_PATH = "/tmp/nx/s/8cy86161710ir9ngq52h65i55zpp76yy-fixture.drv";
const DRV_TEXT =
  'Derive([("dev","/tmp/nx/s/7n2f7g7fyq2jm8j7s9ink4cyhx73qdqh-fixture-dev","",""),("out","/tmp/nx/s/dpg0qa1hdsm1wwlxjpknnb32r99yp04s-fixture","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo hi > $out; echo dev > $dev"],[("builder","/bin/sh"),("dev","/tmp/nx/s/7n2f7g7fyq2jm8j7s9ink4cyhx73qdqh-fixture-dev"),("name","fixture"),("out","/tmp/nx/s/dpg0qa1hdsm1wwlxjpknnb32r99yp04s-fixture"),("outputs","out dev"),("system","x86_64-linux")])';
const PATH_INFOS_REPLY =
  "NgAAAAAAAAAvdG1wL254L3MvOGN5ODYxNjE3MTBpcjluZ3E1Mmg2NWk1NXpwcDc2eXktZml4dHVyZS5kcnYAAAAAAAAAAAAAAAAAAAAAAAAoAgAAAAAAACgCAAAAAAAAOwAAAAAAAABzaGEyNTY6MTJreTFnd3I2MTJxMTNsZ3N4a3o4eDMyM2c5bmtzeGR2anZxenp2cnZ5MTV3aHd3eWZjZAAAAAAAQAAAAAAAAAB0ZXh0OnNoYTI1Njoxc2E2Mm45aWs0aGR6bHJoNTRpYzB5YWx3c3gyMWRrbW5kcjN3aWwybGNjaGkxZDlzMTNmAAAAAAAAAAAAAAAAAAAAAA==";
const BUILD_RESULT_REPLY =
  "AAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAn3QNrAAAAACfdA2sAAAAAAgAAAAAAAABLAAAAAAAAAHNoYTI1NjowMzE0OTRjOWFlMmYwNDU1ZjMyOTY1YjY1YTc2M2M3NTgxNDJjYmYzOTlmNWI3ODliN2ZlYmMwMDc0YjEzZTlmIWRldgAAAAAAuAAAAAAAAAB7ImRlcGVuZGVudFJlYWxpc2F0aW9ucyI6e30sImlkIjoic2hhMjU2OjAzMTQ5NGM5YWUyZjA0NTVmMzI5NjViNjVhNzYzYzc1ODE0MmNiZjM5OWY1Yjc4OWI3ZmViYzAwNzRiMTNlOWYhZGV2Iiwib3V0UGF0aCI6IjduMmY3ZzdmeXEyam04ajdzOWluazRjeWh4NzNxZHFoLWZpeHR1cmUtZGV2Iiwic2lnbmF0dXJlcyI6W119SwAAAAAAAABzaGEyNTY6MDMxNDk0YzlhZTJmMDQ1NWYzMjk2NWI2NWE3NjNjNzU4MTQyY2JmMzk5ZjViNzg5YjdmZWJjMDA3NGIxM2U5ZiFvdXQAAAAAALQAAAAAAAAAeyJkZXBlbmRlbnRSZWFsaXNhdGlvbnMiOnt9LCJpZCI6InNoYTI1NjowMzE0OTRjOWFlMmYwNDU1ZjMyOTY1YjY1YTc2M2M3NTgxNDJjYmYzOTlmNWI3ODliN2ZlYmMwMDc0YjEzZTlmIW91dCIsIm91dFBhdGgiOiJkcGcwcWExaGRzbTF3d2x4anBrbm5iMzJyOTl5cDA0cy1maXh0dXJlIiwic2lnbmF0dXJlcyI6W119AAAAAA==";

describe("handshake", () => {
  test("hello", () => expect(hex(encodeHello())).toBe(u(0x390c9deb) + u(0x207)));
  test.each([
    ["2.7", 0x207, 7],
    ["2.8", 0x208, 7],
    ["2.5", 0x205, 5],
  ])("server %s is accepted; negotiated minor", async (_n, v, minor) => {
    expect(await readHello(reader(encodeU64(0x5452eecb), encodeU64(v)))).toBe(v);
    expect(negotiatedMinor(v)).toBe(minor);
  });
  test.each([
    ["login script output", new TextEncoder().encode("Welcome!"), /expected serve magic 0x5452eecb, got 0x\w+ \(text "Welcome!": does the remote shell print to stdout\?\)/],
    ["wrong magic", concat([encodeU64(0x6f697864)]), /protocol mismatch: expected serve magic 0x5452eecb, got 0x6f697864$/],
    ["major 3", concat([encodeU64(0x5452eecb), encodeU64(0x305)]), /unsupported serve protocol version 3\.5 of the remote: need major version 2/],
    ["minor 4", concat([encodeU64(0x5452eecb), encodeU64(0x204)]), /serve protocol 2\.4 is too old: need 2\.5 or newer/],
    ["EOF", new Uint8Array(3), /unexpected end of stream while reading serve protocol magic from the remote/],
  ])("rejects %s", async (_n, bytes, err) => {
    await expect(readHello(WireReader.fromBytes(bytes))).rejects.toThrow(err);
  });
});

describe("requests", () => {
  test("QueryValidPaths", () => expect(hex(encodeQueryValidPaths(true, false, ["/a"]))).toBe(u(1) + u(1) + u(0) + hex(encodeStrings(["/a"]))));
  const o = { maxSilentTime: 1, buildTimeout: 2, maxLogSize: 3, buildRepeat: 0 as const, enforceDeterminism: true, keepFailed: true };
  test.each([
    [1, [1, 2]],
    [2, [1, 2, 3]],
    [3, [1, 2, 3, 0, 1]],
    [6, [1, 2, 3, 0, 1]],
    [7, [1, 2, 3, 0, 1, 1]],
  ])("build options at minor %d", (minor, fields) => expect(hex(encodeBuildOptions(o, minor))).toBe(fields.map(u).join("")));
  test.each([
    ["/s/x.drv", [], "/s/x.drv"],
    ["/s/x.drv", ["out", "dev"], "/s/x.drv!out,dev"],
  ])("pathWithOutputs(%p, %p)", (p, outs, s) => expect(pathWithOutputs(p, outs)).toBe(s));

  test("BasicDerivation encoding", () => {
    const drv = parseDerivation(DRV_TEXT);
    const out = (name: string, path: string) => [encodeString(name), encodeString(path), encodeString(""), encodeString("")];
    expect(hex(encodeBasicDerivation(basicDerivation(drv)))).toBe(
      hex(
        concat([
          encodeU64(2),
          ...out("dev", "/tmp/nx/s/7n2f7g7fyq2jm8j7s9ink4cyhx73qdqh-fixture-dev"),
          ...out("out", "/tmp/nx/s/dpg0qa1hdsm1wwlxjpknnb32r99yp04s-fixture"),
          encodeStrings([]),
          encodeString("x86_64-linux"),
          encodeString("/bin/sh"),
          encodeStrings(["-c", "echo hi > $out; echo dev > $dev"]),
          encodeU64(6),
          ...[...drv.env].flat().map((s) => encodeString(s)),
        ]),
      ),
    );
  });
  test("fixed-output derivation keeps its hash fields", () => {
    const drv = parseDerivation('Derive([("out","/s/h-f","r:sha256","abcd")],[],["/s/src"],"x","/b",[],[])');
    expect(hex(encodeBasicDerivation(basicDerivation(drv)))).toBe(
      hex(concat([encodeU64(1), ...["out", "/s/h-f", "r:sha256", "abcd"].map((s) => encodeString(s)), encodeStrings(["/s/src"]), encodeString("x"), encodeString("/b"), encodeStrings([]), encodeU64(0)])),
    );
  });
  test("inputDrvs: inputSrcs become the input closure", () => {
    const drv = parseDerivation('Derive([("out","/s/h-o","","")],[("/s/d.drv",["out"])],["/s/src"],"x","/b",[],[])');
    expect(basicDerivation(drv, ["/s/src", "/s/dep-out"]).inputSrcs).toEqual(["/s/src", "/s/dep-out"]);
    expect(() => basicDerivation(drv)).toThrow(/has inputDrvs: pass its input closure/);
    // Without inputDrvs the closure is ignored, as build-remote does.
    expect(basicDerivation(parseDerivation(DRV_TEXT), ["/x"]).inputSrcs).toEqual([]);
  });

  const hash = "sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h";
  const hashHex = "10551daed7fa467d0b58826e7eb9a0f2af7d693de319f2ef775fffcda244b9f6";
  test("AddToStoreNar header sends the hash as bare base16", () => {
    expect(hex(encodeAddToStoreNar({ path: "/s/p", narHash: hash, references: ["/s/r"], narSize: 120, ca: "fixed:x" }))).toBe(
      u(9) + hex(concat([encodeString("/s/p"), encodeString(""), encodeString(hashHex), encodeStrings(["/s/r"]), encodeU64(0), encodeU64(120), encodeU64(0), encodeStrings([]), encodeString("fixed:x")])),
    );
  });
  test.each([
    ["zero narSize", { narSize: 0, narHash: hash }, /narSize must be positive, got 0/],
    ["bad hash", { narSize: 1, narHash: "md5:abc" }, /algorithm 'md5'/],
    ["short hash bytes", { narSize: 1, narHash: new Uint8Array(20) }, /narHash must be 32 bytes, got 20/],
  ])("AddToStoreNar rejects %s", (_n, info, err) => expect(() => encodeAddToStoreNar({ path: "/s/p", references: [], ...info })).toThrow(err));
});

describe("replies", () => {
  test("QueryPathInfos reply of Nix 2.8", async () => {
    const r = WireReader.fromBytes(b64(PATH_INFOS_REPLY));
    const infos = await readPathInfos(r, 7);
    expect([...infos]).toEqual([
      [
        DRV_PATH,
        {
          references: [],
          downloadSize: 552,
          narSize: 552,
          narHash: "sha256:12ky1gwr612q13lgsxkz8x323g9nksxdvjvqzzvrvy15whwwyfcd",
          ca: "text:sha256:1sa62n9ik4hdzlrh54ic0yalwsx21dkmndr3wil2lcchi1d9s13f",
          sigs: [],
        },
      ],
    ]);
    expect(await r.atEnd()).toBe(true);
  });
  test("QueryPathInfos below minor 4 has no hash, ca or sigs", async () => {
    const r = reader(encodeString("/s/p"), encodeString("/s/d.drv"), encodeStrings(["/s/r"]), encodeU64(5), encodeU64(6), encodeString(""));
    expect([...(await readPathInfos(r, 3))]).toEqual([["/s/p", { deriver: "/s/d.drv", references: ["/s/r"], downloadSize: 5, narSize: 6, narHash: "", sigs: [] }]]);
  });
  test("BuildDerivation reply of Nix 2.8 (JSON builtOutputs)", async () => {
    const r = WireReader.fromBytes(b64(BUILD_RESULT_REPLY));
    const res = await readBuildResult(r, 7, STORE);
    expect(res).toEqual({
      status: 0,
      statusName: "Built",
      errorMsg: "",
      timesBuilt: 1,
      isNonDeterministic: false,
      startTime: 1795415335,
      stopTime: 1795415335,
      builtOutputs: new Map([
        ["dev", { outPath: "/tmp/nx/s/7n2f7g7fyq2jm8j7s9ink4cyhx73qdqh-fixture-dev", signatures: [] }],
        ["out", { outPath: "/tmp/nx/s/dpg0qa1hdsm1wwlxjpknnb32r99yp04s-fixture", signatures: [] }],
      ]),
    });
    expect(await r.atEnd()).toBe(true);
  });
  const head = (status: number, msg: string) => [encodeU64(status), encodeString(msg), encodeU64(1), encodeU64(0), encodeU64(10), encodeU64(20)];
  test("minor 8 builtOutputs (name, path, sigs)", async () => {
    const r = reader(...head(0, ""), encodeU64(1), encodeString("out"), encodeString("/nix/store/h-o"), encodeStrings(["k:sig"]));
    expect([...(await readBuildResult(r, 8)).builtOutputs]).toEqual([["out", { outPath: "/nix/store/h-o", signatures: ["k:sig"] }]]);
  });
  test("minor 5 has no builtOutputs; minor 2 no times", async () => {
    const r5 = reader(...head(3, "boom"));
    expect(await readBuildResult(r5, 5)).toMatchObject({ status: 3, statusName: "PermanentFailure", errorMsg: "boom", stopTime: 20 });
    expect(await r5.atEnd()).toBe(true);
    const r2 = reader(encodeU64(8), encodeString("slow"));
    expect(await readBuildResult(r2, 2)).toMatchObject({ statusName: "TimedOut", timesBuilt: 0, startTime: 0 });
  });
  test.each([
    ["bad JSON", [encodeString("sha256:x!out"), encodeString("{")], /realisation of 'sha256:x!out' is not JSON/],
    ["no outPath", [encodeString("sha256:x!out"), encodeString("{}")], /has no string outPath/],
    ["no output name", [encodeString("sha256:x"), encodeString("{}")], /lacks '!<output>'/],
  ])("builtOutputs: %s", async (_n, parts, err) => {
    await expect(readBuildResult(reader(...head(0, ""), encodeU64(1), ...parts), 7)).rejects.toThrow(err);
  });
  test.each([
    [0, "Built", true],
    [2, "AlreadyValid", true],
    [13, "ResolvesToAlreadyValid", true],
    [3, "PermanentFailure", false],
    [14, "NoSubstituters", false],
    [99, "Unknown(99)", false],
  ])("status %d is %s", (s, name, ok) => {
    expect(buildStatusName(s)).toBe(name);
    expect(isBuildSuccess(s)).toBe(ok);
  });
  test("BuildPaths replies", async () => {
    expect(await readBuildPathsResult(reader(encodeU64(0)))).toEqual({ ok: true });
    expect(await readBuildPathsResult(reader(encodeU64(100), encodeString("build failed")))).toEqual({ ok: false, status: 100, errorMsg: "build failed" });
  });
  test("ack", async () => {
    await readAck(reader(encodeU64(1)), "ImportPaths");
    await expect(readAck(reader(encodeU64(0)), "ImportPaths")).rejects.toThrow(ServeProtocolError);
    await expect(readAck(reader(), "AddToStoreNar")).rejects.toThrow(/reply to AddToStoreNar/);
  });
  test("default options are all zero", () => expect(hex(encodeBuildOptions(DEFAULT_BUILD_OPTIONS, 7))).toBe(u(0).repeat(6)));
});
