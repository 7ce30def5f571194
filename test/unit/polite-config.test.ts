// Expected: the polite scheduler's settings. By default the rate is below Slurm's own per-user
// limit (30 at once, 2/s) and there is no queue cap; a bad scheduler-rate is refused with a
// message naming the setting and the expected form; every process derives the same endpoint key
// from the same config, different schedulers or users get different keys, and no secret is in it.
import { expect, test } from "bun:test";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { endpointKey, politeOptionsFromConfig } from "../../src/schedulers/polite.ts";
import type { StateDb } from "../../src/state/db.ts";

const db = {} as StateDb;

test("defaults: under Slurm's own rate limit, no cap", () => {
  const o = politeOptionsFromConfig(defaultNshConfig(), db);
  expect(o.rate!.burst).toBeLessThan(30);
  expect(o.rate!.perSecond).toBeLessThan(2);
  expect(o.maxQueuedJobs).toBe(0);
});

test("scheduler-rate off, and a cap", () => {
  const o = politeOptionsFromConfig({ ...defaultNshConfig(), "scheduler-rate": "off", "max-queued-jobs": 40 }, db);
  expect(o.rate).toBeNull();
  expect(o.maxQueuedJobs).toBe(40);
});

test("a bad scheduler-rate: an error naming the setting and the form", () => {
  expect(() => politeOptionsFromConfig({ ...defaultNshConfig(), "scheduler-rate": "fast" }, db)).toThrow(/'scheduler-rate' expects BURST PER-SECOND .* got 'fast'/);
});

test("endpoint keys: stable, distinct per scheduler and user, without the token", () => {
  const c = { ...defaultNshConfig(), "slurm-jwt-token": "SECRET.TOKEN.X" };
  expect(endpointKey(c)).toBe(endpointKey({ ...c }));
  expect(endpointKey(c)).toBe("slurm http://localhost:6820 ");
  expect(endpointKey({ ...c, "slurm-user": "alice" })).not.toBe(endpointKey(c));
  expect(endpointKey({ ...c, "job-scheduler": "slurm-cli" })).not.toBe(endpointKey(c));
  expect(endpointKey(c)).not.toContain("SECRET");
});
