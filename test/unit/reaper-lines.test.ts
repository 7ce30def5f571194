// Expected: the reaper learns from the hook's lines whether a submit request went out before the
// hook died (only then can a job it never heard of exist, to be looked for by its tag).
import { expect, test } from "bun:test";
import { readReaperLines } from "../../src/hook/reaper.ts";

const order = JSON.stringify({ conf: {}, env: {}, record: { stateDir: "/s", key: "k" } });

test.each([
  ["the order alone: nothing was submitted", [order], undefined, undefined],
  ["a submit went out, no answer", [order, '{"submitting":true}'], true, undefined],
  ["a submit went out and was answered", [order, '{"submitting":true}', '{"jobId":"9"}'], true, "9"],
] as const)("%s", (_what, lines, submitting, jobId) => {
  const said = readReaperLines(lines);
  expect(said.submitting).toBe(submitting);
  expect(said.jobId).toBe(jobId);
  expect(said.done).toBe(false);
});
