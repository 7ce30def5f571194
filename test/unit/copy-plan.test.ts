import { expect, test } from "bun:test";
import { afterValidityAnswer, closureWithin, firstValidityQuery, planCopy, topoSort } from "../../src/remote/copy-plan.ts";

const infos = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([p, refs]) => [p, { references: refs, narSize: 10 }]));

test.each([
  [{ a: ["b"], b: ["c"], c: [] }, ["c", "b", "a"]],
  [{ top: ["x", "y"], x: ["base"], y: ["base"], base: ["base"] }, ["base", "x", "y", "top"]],
  [{ a: ["outside"] }, ["a"]],
])("topological order %#", (edges, order) => expect(topoSort(infos(edges))).toEqual(order));

test("a cycle is reported with its path", () => expect(() => topoSort(infos({ a: ["b"], b: ["a"] }))).toThrow(/reference cycle: a -> b -> a/));

test("plan skips what the destination has and sums the rest", () => {
  const plan = planCopy(infos({ a: ["b"], b: ["c"], c: [] }), new Set(["c"]));
  expect(plan).toEqual({ send: ["b", "a"], present: ["c"], bytes: 20 });
});

const chain = infos({ top: ["mid", "side"], mid: ["base"], side: [], base: ["base"] });
const all = ["base", "mid", "side", "top"];

test.each([
  [["top"], all],
  [["mid"], ["base", "mid"]],
  [["side", "base"], ["base", "side"]],
  [[], []],
])("closure of %p", (roots, want) => expect([...closureWithin(chain, roots)].sort()).toEqual(want));

// The cache only decides whether the roots alone are asked first; the destination always answers.
test.each([
  ["cache believes every root: ask only the roots", ["top"], ["top", "base"], ["top"]],
  ["cache knows nothing: the whole closure", ["top"], [], all],
  ["cache believes paths below a root, not the root: the whole closure", ["top"], ["mid", "base", "side"], all],
  ["one of two roots not cached: the whole closure", ["mid", "side"], ["mid"], ["base", "mid", "side"]],
  ["nothing requested: nothing asked", [], [], []],
])("first query: %s", (_what, roots, cached, want) => {
  const closure = [...closureWithin(chain, roots)].sort();
  expect(firstValidityQuery(roots, closure, new Set(cached)).sort()).toEqual(want);
});

test.each([
  // asked, said valid → valid, still unknown
  ["the root is there: its closure is", ["top"], ["top"], all, []],
  ["the root is gone: everything below must be asked", ["top"], [], [], ["base", "mid", "side"]],
  ["whole closure asked: exactly what was said, plus closures", all, ["mid"], ["base", "mid"], []],
  ["whole closure asked, nothing there", all, [], [], []],
])("answer: %s", (_what, asked, said, valid, unknown) => {
  const r = afterValidityAnswer(chain, all, asked, new Set(said));
  expect([...r.valid].sort()).toEqual(valid);
  expect(r.unknown.sort()).toEqual(unknown);
});
