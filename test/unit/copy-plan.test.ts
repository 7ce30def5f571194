import { expect, test } from "bun:test";
import { planCopy, topoSort } from "../../src/remote/copy-plan.ts";

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
