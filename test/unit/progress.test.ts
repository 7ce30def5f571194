import { expect, test } from "bun:test";
import { JsonSink, NixActivitySink, progressLine } from "../../src/util/progress.ts";

test("progress line", () => expect(progressLine({ paths: 2, bytes: 3 << 20 }, { paths: 5, bytes: 10 << 20 }, 1000)).toBe("copied 2/5 paths, 3.0 MiB/10.0 MiB (3.0 MiB/s)"));

test("Nix activities: a copyPaths parent, a copyPath child per path, well-typed fields, all stopped", () => {
  const lines: string[] = [];
  const s = new NixActivitySink((l) => lines.push(l), 1000);
  s.begin({ paths: 1, bytes: 10 }, "copying 1 path");
  s.pathStart("/nix/store/a-x", 10, "local", "ssh://n1");
  s.bytes("/nix/store/a-x", 10);
  s.pathDone("/nix/store/a-x", true);
  s.end(true);
  expect(lines.every((l) => l.startsWith("@nix {") && l.endsWith("}\n"))).toBe(true);
  const msgs = lines.map((l) => JSON.parse(l.slice(5)));
  expect(msgs[0]).toMatchObject({ action: "start", id: 1001, type: 103, text: "copying 1 path" });
  const child = msgs.find((m) => m.action === "start" && m.type === 100);
  expect(child).toMatchObject({ id: 1002, parent: 1001, fields: ["/nix/store/a-x", "local", "ssh://n1"] });
  for (const m of msgs) for (const f of m.fields ?? []) expect(typeof f === "string" || (Number.isInteger(f) && f >= 0)).toBe(true);
  const started = msgs.filter((m) => m.action === "start").map((m) => m.id).sort();
  const stopped = msgs.filter((m) => m.action === "stop").map((m) => m.id).sort();
  expect(stopped).toEqual(started);
  expect(msgs.findLast((m) => m.action === "result" && m.id === 1001).fields).toEqual([1, 1, 0, 0]);
});

test("JSON events", () => {
  const lines: string[] = [];
  const s = new JsonSink((l) => lines.push(l));
  s.begin({ paths: 1, bytes: 4 }, "x");
  s.pathStart("/p", 4, "a", "b");
  s.bytes("/p", 4);
  s.pathDone("/p", true);
  s.end(true);
  const evs = lines.map((l) => JSON.parse(l));
  expect(evs.map((e) => e.event)).toEqual(["begin", "path-start", "progress", "path-done", "end"]);
  expect(evs[3]).toEqual({ event: "path-done", path: "/p", ok: true, bytes: 4 });
});
