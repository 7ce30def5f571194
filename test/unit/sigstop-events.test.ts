import { describe, expect, test } from "bun:test";
import { BuildTracker, LineSplitter, decodeEvent, encodeEvent, type BuildEvent } from "../../src/sigstop/events.ts";

const start = (id: string, drv = `/s/${id}.drv`): BuildEvent => ({ ev: "start", id, drv, reply: "accept", notifier: 1 });
const done = (id: string, ok = true): BuildEvent => ({ ev: "done", id, drv: `/s/${id}.drv`, ok });

describe("build tracker", () => {
  test("stop on the first build, resume after the last", () => {
    const t = new BuildTracker();
    expect([start("a"), start("b"), done("a"), done("b")].map((e) => t.onEvent(e, 0))).toEqual(["stop", "none", "none", "resume"]);
  });
  test("duplicates and unknown dones are ignored", () => {
    const t = new BuildTracker();
    expect([start("a"), start("a"), done("x"), done("a"), done("a")].map((e) => t.onEvent(e, 0))).toEqual(["stop", "none", "none", "resume", "none"]);
  });
  test("counts distinct derivations and failures", () => {
    const t = new BuildTracker();
    for (const e of [start("a"), done("a", false), start("a2", "/s/a.drv"), done("a2")]) t.onEvent(e, 0);
    expect(t.seen.size).toBe(1);
    expect(t.failed).toBe(1);
  });
  test("builds whose notifier vanished", () => {
    const t = new BuildTracker();
    t.onEvent({ ...start("a"), notifier: 10 } as BuildEvent, 0);
    t.onEvent({ ...start("b"), notifier: 11 } as BuildEvent, 0);
    expect(t.vanished((pid) => pid === 11)).toEqual(["a"]);
  });
});

describe("event lines", () => {
  test("round trip", () => expect(decodeEvent(encodeEvent(start("a")).trim())).toEqual(start("a")));
  test.each(["not json", "{}", '{"ev":"start","id":"a","drv":"d"}', '{"ev":"done","id":1,"drv":"d","ok":true}'])("rejects %p with a message", (l) =>
    expect(typeof decodeEvent(l)).toBe("string"));
  test("too long for an atomic write", () => expect(() => encodeEvent(start("a", "x".repeat(5000)))).toThrow(/atomic/));
  test("splitter keeps partial lines", () => {
    const s = new LineSplitter();
    expect(s.push("a\nb")).toEqual(["a"]);
    expect(s.push("c\n\n")).toEqual(["bc"]);
  });
});
