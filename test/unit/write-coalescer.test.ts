// Expected: writes made in one synchronous run reach the socket as one write, in order, with the
// bytes as they were at the time of the call (callers may reuse their buffers); large bursts are
// split at the flush threshold, and string writes or writes with callbacks keep their place.
import { expect, test } from "bun:test";
import { coalesceWrites } from "../../src/remote/write-coalescer.ts";

function fakeSocket() {
  const writes: (string | Uint8Array)[] = [];
  const sock = {
    write(d: Uint8Array | string, ...rest: unknown[]): boolean {
      writes.push(typeof d === "string" ? d : Uint8Array.from(d));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    },
  };
  return { sock, writes };
}
const bytes = (...xs: number[]) => Uint8Array.from(xs);
const tick = () => new Promise<void>((r) => setTimeout(r, 0));

test("one synchronous burst becomes one write, in order", async () => {
  const { sock, writes } = fakeSocket();
  const stats = coalesceWrites(sock);
  sock.write(bytes(1, 2));
  sock.write(bytes(3));
  sock.write(bytes(4, 5, 6));
  expect(writes).toHaveLength(0);
  await tick();
  expect(writes).toEqual([bytes(1, 2, 3, 4, 5, 6)]);
  expect(stats).toEqual({ calls: 3, flushes: 1 });
});

test("a caller reusing its buffer does not change what was written", async () => {
  const { sock, writes } = fakeSocket();
  coalesceWrites(sock);
  const scratch = bytes(7, 7, 7);
  sock.write(scratch);
  scratch.fill(0);
  sock.write(scratch);
  await tick();
  expect(writes).toEqual([bytes(7, 7, 7, 0, 0, 0)]);
});

test("bursts above the threshold are flushed at once; larger chunks go alone", async () => {
  const { sock, writes } = fakeSocket();
  coalesceWrites(sock, 8);
  sock.write(bytes(1, 2, 3, 4, 5));
  sock.write(bytes(6, 7, 8, 9)); // would pass 8: the first five go now
  expect(writes).toEqual([bytes(1, 2, 3, 4, 5)]);
  sock.write(bytes(...Array.from({ length: 10 }, (_, i) => i))); // flushes 6..9, then goes alone
  expect(writes).toHaveLength(3);
  expect(writes[1]).toEqual(bytes(6, 7, 8, 9));
  expect(writes[2]).toHaveLength(10);
  await tick();
  expect(writes).toHaveLength(3);
});

test("strings and writes with callbacks flush what is pending first", async () => {
  const { sock, writes } = fakeSocket();
  coalesceWrites(sock);
  sock.write(bytes(1));
  sock.write("SSH-2.0-x\r\n");
  let called = false;
  sock.write(bytes(2));
  sock.write(bytes(3), () => (called = true));
  expect(writes).toEqual([bytes(1), "SSH-2.0-x\r\n", bytes(2), bytes(3)]);
  expect(called).toBe(true);
  await tick();
  expect(writes).toHaveLength(4);
});
