// ssh2 (without its optional native addon, which we do not build) hands every SSH packet to the
// socket in up to four writes (length, ciphertext, final block, tag), so a 1 GiB copy made ~130 000
// socket writes and most of nsh's CPU went into them. This gathers everything written in one
// synchronous run into a single write, copied into one larger buffer.

interface Writable {
  write(data: Uint8Array | string, ...rest: unknown[]): boolean;
}

/** Flush at once above this many bytes, so a long synchronous burst does not pile up unbounded. */
const FLUSH_AT = 256 << 10;

export interface CoalescerStats {
  calls: number;
  flushes: number;
}

/**
 * Replaces `target.write` with one that copies the data at once (callers may reuse their buffer)
 * and writes the gathered bytes in one call at the end of the current microtask checkpoint, or
 * sooner when FLUSH_AT bytes are waiting. Order is kept; strings and callbacks go through as is
 * (after flushing what is pending), since ssh2 only writes bytes on the hot path.
 */
export function coalesceWrites(target: Writable, flushAt = FLUSH_AT): CoalescerStats {
  const write = target.write.bind(target);
  const stats: CoalescerStats = { calls: 0, flushes: 0 };
  let buf: Buffer | undefined;
  let used = 0;
  let scheduled = false;

  // Buffers come back once the socket says it has written them, so a long copy reuses a few
  // instead of leaving one to the garbage collector per flush.
  const spare: Buffer[] = [];
  const flush = () => {
    scheduled = false;
    if (!buf || used === 0) return;
    const whole = buf;
    const out = buf.subarray(0, used);
    buf = undefined;
    used = 0;
    stats.flushes++;
    write(out, () => {
      if (spare.length < 4) spare.push(whole);
    });
  };

  target.write = (data: Uint8Array | string, ...rest: unknown[]): boolean => {
    stats.calls++;
    if (typeof data === "string" || rest.length > 0) {
      flush();
      return write(data, ...rest);
    }
    if (used + data.length > flushAt) flush();
    if (data.length >= flushAt) {
      stats.flushes++;
      return write(Buffer.from(data));
    }
    buf ??= spare.pop() ?? Buffer.allocUnsafe(flushAt);
    buf.set(data, used);
    used += data.length;
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
    return true;
  };
  return stats;
}
