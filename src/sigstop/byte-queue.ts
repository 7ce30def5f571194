// Pure: the bytes one relay direction holds for a sink that cannot take them yet. They are copied
// into fixed-size chunks, appending to the last one while it has room, and emptied chunks go back to
// a shared pool. The relay runs a synchronous loop in which the garbage collector runs rarely: a
// fresh copy per read let a 50 MB log flood grow the guard by ~100 MB of dead buffers.

export class ChunkPool {
  private readonly free: Uint8Array[] = [];
  constructor(
    readonly chunkSize: number,
    /** Free chunks kept for reuse; more are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  take(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.chunkSize);
  }

  give(chunk: Uint8Array): void {
    if (this.free.length < this.keep) this.free.push(chunk);
  }
}

interface Chunk {
  buf: Uint8Array;
  /** Bytes [start, end) are queued. */
  start: number;
  end: number;
}

export class ByteQueue {
  private chunks: Chunk[] = [];
  private head = 0;
  bytes = 0;

  constructor(private readonly pool: ChunkPool) {}

  /** Copies src[from, to) to the end of the queue. */
  append(src: Uint8Array, from: number, to: number): void {
    while (from < to) {
      let tail = this.chunks.length > this.head ? this.chunks[this.chunks.length - 1]! : undefined;
      if (!tail || tail.end === tail.buf.length) {
        tail = { buf: this.pool.take(), start: 0, end: 0 };
        this.chunks.push(tail);
      }
      const n = Math.min(to - from, tail.buf.length - tail.end);
      tail.buf.set(src.subarray(from, from + n), tail.end);
      tail.end += n;
      this.bytes += n;
      from += n;
    }
  }

  /**
   * Offers the queued bytes to `send(buf, offset, length)`, which returns how many it took or a
   * negative errno; stops at the first short or failed send. Returns that errno, or 0.
   */
  drainTo(send: (buf: Uint8Array, offset: number, length: number) => number): number {
    while (this.head < this.chunks.length) {
      const c = this.chunks[this.head]!;
      const w = send(c.buf, c.start, c.end - c.start);
      if (w < 0) return w;
      this.bytes -= w;
      c.start += w;
      if (c.start < c.end) return 0;
      this.pool.give(c.buf);
      this.head++;
    }
    this.chunks = [];
    this.head = 0;
    return 0;
  }

  clear(): void {
    for (let i = this.head; i < this.chunks.length; i++) this.pool.give(this.chunks[i]!.buf);
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
  }
}
