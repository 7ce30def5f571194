// Expected: a take that may not wait (maxWaitMs 0, as a start notice's own query) gets a token only
// if one is spendable now: from its bucket, else from the sibling's surplus. Otherwise it fails
// with RateLimitWaitTooLong and reserves nothing, so the requests already queued wait no longer.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStateDb } from "../../src/state/db.ts";
import { RateLimiter, RateLimitWaitTooLong } from "../../src/state/rate-limit.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-take-now-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test("an empty bucket: no token now, nothing reserved; a sibling's surplus is lent", async () => {
  let now = 1_000_000;
  const clock = () => now;
  const policy = { burst: 2, perSecond: 1 };
  const alone = new RateLimiter(db, "alone", policy, { now: clock });
  expect(await alone.take("query", { maxWaitMs: 0 })).toBe(0);
  expect(await alone.take("query", { maxWaitMs: 0 })).toBe(0);
  await expect(alone.take("query", { maxWaitMs: 0 })).rejects.toBeInstanceOf(RateLimitWaitTooLong);
  // Nothing was reserved: the next waiting take waits one refill, not two.
  expect(await alone.take("query", { maxWaitMs: 1000 })).toBe(1000);

  const sibling = { key: "lender", policy: { burst: 4, perSecond: 1 }, keep: 2 };
  const borrower = new RateLimiter(db, "borrower", policy, { now: clock, sibling });
  await borrower.take("query");
  await borrower.take("query");
  expect(await borrower.take("query", { maxWaitMs: 0 })).toBe(0); // the lender's 4 - 1 >= 2
  expect(await borrower.take("query", { maxWaitMs: 0 })).toBe(0); // 3 - 1 >= 2
  await expect(borrower.take("query", { maxWaitMs: 0 })).rejects.toBeInstanceOf(RateLimitWaitTooLong);
  now += 1000;
  expect(await borrower.take("query", { maxWaitMs: 0 })).toBe(0); // refilled
});
