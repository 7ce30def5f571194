// The relay's per-direction queue: bytes come out in order whatever the sink takes, small reads
// share chunks, and emptied chunks are reused instead of left to the garbage collector.
import { expect, test } from "bun:test";
import { ByteQueue, ChunkPool } from "../../src/sigstop/byte-queue.ts";

const EAGAIN = -11;

/** A sink that takes at most `each` bytes per call, `calls` calls in a row, then would block. */
function sink(each: number, calls: number) {
  const got: number[] = [];
  let left = calls;
  return {
    got,
    refill: () => (left = calls),
    send: (buf: Uint8Array, off: number, len: number) => {
      if (left-- <= 0) return EAGAIN;
      const n = Math.min(each, len);
      got.push(...buf.subarray(off, off + n));
      return n;
    },
  };
}

test("bytes come out in order through short sends, and the count follows", () => {
  const q = new ByteQueue(new ChunkPool(8, 4));
  const src = Uint8Array.from({ length: 50 }, (_, i) => i);
  for (let i = 0; i < 50; i += 7) q.append(src, i, Math.min(i + 7, 50));
  expect(q.bytes).toBe(50);
  // A short send stops the drain (the sink is full for now)...
  const s = sink(3, 5);
  expect(q.drainTo(s.send)).toBe(0);
  expect(q.bytes).toBe(47);
  // ...and so does one that would block, after whole chunks went through.
  const t = sink(1000, 2);
  expect(q.drainTo(t.send)).toBe(EAGAIN);
  expect(q.bytes).toBe(50 - 3 - 5 - 8);
  s.got.push(...t.got);
  while (q.bytes > 0) {
    s.refill();
    q.drainTo(s.send);
  }
  expect(s.got).toEqual([...src]);
});

test("small appends share a chunk; emptied chunks are reused", () => {
  const q = new ByteQueue(new ChunkPool(64, 4));
  for (let i = 0; i < 6; i++) q.append(new Uint8Array(10), 0, 10);
  let calls = 0;
  q.drainTo((_b, _o, len) => (calls++, len));
  expect(calls).toBe(1);
  const fresh = new ChunkPool(64, 4);
  const seen = new Set<Uint8Array>();
  const q2 = new ByteQueue(fresh);
  for (let round = 0; round < 100; round++) {
    q2.append(new Uint8Array(120), 0, 120);
    const s = sink(1000, 1000);
    q2.drainTo((buf, off, len) => {
      seen.add(buf);
      return s.send(buf, off, len);
    });
  }
  // 120 bytes a round fill two chunks of 64: the same two, round after round.
  expect(seen.size).toBe(2);
});

test("a failed send is reported and clear() empties the queue", () => {
  const q = new ByteQueue(new ChunkPool(16, 2));
  q.append(new Uint8Array(40), 0, 40);
  expect(q.drainTo(() => -32)).toBe(-32);
  expect(q.bytes).toBe(40);
  q.clear();
  expect(q.bytes).toBe(0);
  expect(q.drainTo(() => -32)).toBe(0);
});
