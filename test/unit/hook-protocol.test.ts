import { describe, expect, test } from "bun:test";
import { encodeAccepted, encodeSettings, encodeTry, isKnownReply, parseReplyLine, readAccepted, readSettings, readTry, verbosityFromArgv } from "../../src/nix/hook-protocol.ts";
import { WireReader, concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

describe("hook protocol codec", () => {
  test("settings blob round trip keeps order and bytes", async () => {
    const s = new Map([["builders", "@/etc/nix/machines"], ["max-jobs", "1"], ["store", "auto"]]);
    const bytes = encodeSettings(s);
    const back = await readSettings(WireReader.fromBytes(bytes));
    expect([...back]).toEqual([...s]);
    expect(encodeSettings(back)).toEqual(bytes);
  });
  test("try request round trip, then EOF", async () => {
    const t = { amWilling: true, system: "x86_64-linux", drvPath: "/nix/store/aaa-x.drv", requiredFeatures: ["nsh", "big"] };
    const r = WireReader.fromBytes(encodeTry(t));
    expect(await readTry(r)).toEqual(t);
    expect(await readTry(r)).toBeUndefined();
  });
  test("accepted build lists", async () => {
    const a = { inputs: ["/nix/store/a", "/nix/store/b"], wantedOutputs: ["out"] };
    expect(await readAccepted(WireReader.fromBytes(encodeAccepted(a)))).toEqual(a);
  });
  test("rejects an unknown request word", async () => {
    await expect(readTry(WireReader.fromBytes(encodeString("build")))).rejects.toThrow(/unexpected request 'build'/);
  });
  test("rejects a bad settings marker", async () => {
    await expect(readSettings(WireReader.fromBytes(concat([encodeU64(2)])))).rejects.toThrow(/bad settings record marker 2/);
  });
  test.each([
    ["# accept", "accept"],
    ["# decline-permanently", "decline-permanently"],
    ["@nix {}", undefined],
    ["plain text", undefined],
  ])("reply line %p", (line, word) => expect(parseReplyLine(line)).toBe(word));
  test("known replies", () => {
    expect(isKnownReply("postpone")).toBe(true);
    expect(isKnownReply("accepted")).toBe(false);
  });
  test.each([
    [["build-remote", "3"], 3],
    [["nix", "__build-remote", "7"], 7],
    [["nsh", "9"], 7], // Nix 2.8 does not cap -v: above vomit is vomit
  ])("verbosity is the last argument: %p", (argv, v) => expect(verbosityFromArgv(argv)).toBe(v));
  test("verbosity must be a number", () => {
    expect(() => verbosityFromArgv(["hook", "x"])).toThrow(/verbosity/);
    expect(() => verbosityFromArgv(["hook", "-1"])).toThrow(/verbosity/);
  });
});
