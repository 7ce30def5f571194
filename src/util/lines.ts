// Reads a byte stream line by line, keeping each line's exact bytes (newline included).
export class ByteLines {
  private buf = new Uint8Array(0);
  private done = false;
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> };

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader() as never;
  }

  /** The next line with its "\n", the unterminated rest at EOF, or undefined when nothing is left. */
  async next(): Promise<Uint8Array | undefined> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        const line = this.buf.slice(0, nl + 1);
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      if (this.done) {
        if (this.buf.length === 0) return undefined;
        const rest = this.buf;
        this.buf = new Uint8Array(0);
        return rest;
      }
      const r = await this.reader.read();
      if (r.done || !r.value) this.done = true;
      else {
        const next = new Uint8Array(this.buf.length + r.value.length);
        next.set(this.buf);
        next.set(r.value, this.buf.length);
        this.buf = next;
      }
    }
  }
}
