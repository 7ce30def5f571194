// A serve protocol session (`nix-store --serve --write`) over any Duplex: an ssh2 channel to a
// remote store or a local child process. Requests run one at a time; a dead server turns into an
// error that names where it ran and what it said on stderr (the protocol has no error framing).
import type { Duplex } from "./duplex.ts";
import { readNar, type NarOutput, type NarSink } from "./nar.ts";
import {
  type AddToStoreNarInfo,
  type BasicDerivation,
  type BuildOptions,
  type BuildResult,
  type ServePathInfo,
  DEFAULT_BUILD_OPTIONS,
  encodeAddToStoreNar,
  encodeBuildDerivation,
  encodeDumpStorePath,
  encodeHello,
  encodeImportPaths,
  encodeQueryClosure,
  encodeQueryPathInfos,
  encodeQueryValidPaths,
  negotiatedMinor,
  readAck,
  readBuildResult,
  readHello,
  readPathInfos,
  readPathSet,
} from "./serve-protocol.ts";
import { exportEnd, exportHeader, exportTrailer } from "./export.ts";
import { WireReader } from "./wire.ts";

export class ServeError extends Error {}

/**
 * A failure of whatever received the bytes we streamed (the other store of a copy). It passes
 * through this session, which it leaves broken mid-NAR, and is explained by the receiving side.
 */
export class SinkError extends Error {
  constructor(
    readonly inner: unknown,
    /** The session whose NAR stream the failure interrupted. */
    readonly source: ServeClient,
  ) {
    super((inner as Error)?.message ?? String(inner));
  }
}

/** Streams a NAR into the given sink and reports what it streamed. */
export type NarProducer = (sink: NarOutput) => Promise<{ narHash: Uint8Array; narSize: number }>;

export class ServeClient {
  private queue: Promise<unknown> = Promise.resolve();
  private broken?: ServeError;

  private constructor(
    readonly duplex: Duplex,
    private readonly r: WireReader,
    readonly minor: number,
    readonly storeDir: string,
    private readonly label?: string,
  ) {}

  /** `label` names the store in progress messages; errors name the full command. */
  static async open(duplex: Duplex, storeDir = "/nix/store", label?: string): Promise<ServeClient> {
    const r = new WireReader(duplex.stdout);
    try {
      await duplex.write(encodeHello());
      const version = await readHello(r);
      return new ServeClient(duplex, r, negotiatedMinor(version), storeDir, label);
    } catch (e) {
      throw await failure(duplex, "the handshake", e);
    }
  }

  get name(): string {
    return this.label ?? this.duplex.describe;
  }

  /** Runs one request/response exchange at a time; a failure poisons the session. */
  private op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.broken) throw this.broken;
      try {
        return await fn();
      } catch (e) {
        if (e instanceof SinkError && e.source === this) {
          // Our NAR stream stopped halfway because the receiver failed: unusable, but not our fault.
          this.broken = new ServeError(`${this.name}: ${what} interrupted because the receiving store failed`);
          this.duplex.close();
          throw e;
        }
        this.broken = await failure(this.duplex, what, e instanceof SinkError ? e.inner : e);
        this.duplex.close();
        throw this.broken;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  queryValidPaths(paths: readonly string[], lock = false): Promise<Set<string>> {
    if (paths.length === 0) return Promise.resolve(new Set());
    return this.op("QueryValidPaths", async () => {
      await this.duplex.write(encodeQueryValidPaths(lock, false, paths));
      return new Set(await readPathSet(this.r, "valid paths"));
    });
  }

  queryPathInfos(paths: readonly string[]): Promise<Map<string, ServePathInfo>> {
    if (paths.length === 0) return Promise.resolve(new Map());
    return this.op("QueryPathInfos", async () => {
      await this.duplex.write(encodeQueryPathInfos(paths));
      return readPathInfos(this.r, this.minor);
    });
  }

  queryClosure(paths: readonly string[], includeOutputs = false): Promise<string[]> {
    return this.op("QueryClosure", async () => {
      await this.duplex.write(encodeQueryClosure(includeOutputs, paths));
      return readPathSet(this.r, "closure");
    });
  }

  /**
   * Streams one path's NAR into `sink` (bounded memory: one chunk at a time). `noHash` when the
   * receiver checks the hash itself (another serve session does; a restore here would not).
   */
  dumpStorePath(path: string, sink: NarSink, opts: { noHash?: boolean } = {}): Promise<{ narHash: Uint8Array; narSize: number }> {
    return this.op(`DumpStorePath ${path}`, async () => {
      await this.duplex.write(encodeDumpStorePath(path));
      return readNar(
        this.r,
        async (chunk) => {
          try {
            await sink(chunk);
          } catch (e) {
            throw e instanceof SinkError ? e : new SinkError(e, this);
          }
        },
        { noHash: opts.noHash },
      );
    });
  }

  /** A producer for this path's NAR, to feed into another store. */
  narOf(path: string): NarProducer {
    return (sink) => this.dumpStorePath(path, sink);
  }

  /** The session's stdin as a NAR output, with the transport's file shortcut when it has one. */
  private narOutput(): NarOutput {
    const d = this.duplex;
    const out: NarOutput = (chunk) => d.write(chunk);
    if (d.writeFromFile) out.fromFile = (fd, offset, length, onBytes) => d.writeFromFile!(fd, offset, length, onBytes);
    return out;
  }

  /** Adds one path whose NAR `nar` streams; the server registers it only once all bytes arrived. */
  addToStoreNar(info: AddToStoreNarInfo, nar: NarProducer): Promise<void> {
    return this.op(`AddToStoreNar ${info.path}`, async () => {
      if (this.minor < 5) return this.importOne(info, nar);
      await this.duplex.write(encodeAddToStoreNar(info));
      const got = await nar(this.narOutput());
      if (got.narSize !== info.narSize) throw new ServeError(`${info.path}: sent ${got.narSize} NAR bytes but announced ${info.narSize}`);
      await readAck(this.r, `AddToStoreNar ${info.path}`);
    });
  }

  /**
   * Adds several paths without waiting for each acknowledgement before sending the next (the
   * server answers in order): for closures of many small paths the round trips overlap instead of
   * adding up. At most `window` acknowledgements are outstanding.
   */
  addManyToStoreNar(items: readonly { info: AddToStoreNarInfo; nar: NarProducer }[], window = 32, onAck: (path: string) => void = () => {}): Promise<void> {
    if (this.minor < 5) return items.reduce((p, it) => p.then(() => this.addToStoreNar(it.info, it.nar)), Promise.resolve());
    return this.op(`AddToStoreNar of ${items.length} paths`, async () => {
      let acked = 0;
      let ackError: unknown;
      const waiters: (() => void)[] = [];
      const reader = (async () => {
        for (const it of items) {
          await readAck(this.r, `AddToStoreNar ${it.info.path}`);
          acked++;
          onAck(it.info.path);
          waiters.shift()?.();
        }
      })().catch((e) => {
        ackError = e;
        for (const w of waiters.splice(0)) w();
      });
      for (let i = 0; i < items.length; i++) {
        while (i - acked >= window && ackError === undefined) await new Promise<void>((res) => waiters.push(res));
        if (ackError !== undefined) break;
        const { info, nar } = items[i]!;
        await this.duplex.write(encodeAddToStoreNar(info));
        const got = await nar(this.narOutput());
        if (got.narSize !== info.narSize) throw new ServeError(`${info.path}: sent ${got.narSize} NAR bytes but announced ${info.narSize}`);
      }
      await reader;
      if (ackError !== undefined) throw ackError;
    });
  }

  /** ImportPaths: only for servers older than AddToStoreNar (serve protocol < 2.5). */
  private async importOne(info: AddToStoreNarInfo, nar: NarProducer): Promise<void> {
    await this.duplex.write(encodeImportPaths());
    await this.duplex.write(exportHeader());
    await nar((chunk) => this.duplex.write(chunk));
    await this.duplex.write(exportTrailer({ path: info.path, references: [...info.references], deriver: info.deriver }));
    await this.duplex.write(exportEnd());
    await readAck(this.r, `ImportPaths ${info.path}`);
  }

  buildDerivation(drvPath: string, drv: BasicDerivation, options: BuildOptions = DEFAULT_BUILD_OPTIONS): Promise<BuildResult> {
    return this.op(`BuildDerivation ${drvPath}`, async () => {
      // stdin must stay open until the reply: the server cancels the build on EOF.
      await this.duplex.write(encodeBuildDerivation(drvPath, drv, options, this.minor));
      return readBuildResult(this.r, this.minor, this.storeDir);
    });
  }

  async close(): Promise<void> {
    await this.queue;
    await this.duplex.end();
    await Promise.race([this.duplex.exited, Bun.sleep(2000)]);
    this.duplex.close();
  }
}

/** What went wrong, in the server's words when it said anything. */
async function failure(duplex: Duplex, what: string, e: unknown): Promise<ServeError> {
  if (e instanceof ServeError) return e;
  // Give the server a moment to finish its last words on stderr and exit.
  const status = await Promise.race([duplex.exited, Bun.sleep(300).then(() => undefined)]);
  const said = duplex.stderrTail().trim().split("\n").filter(Boolean).slice(-3).join(" / ");
  const exit = status ? ` (exit ${status.code ?? status.signal})` : "";
  const detail = said || (e as Error).message;
  return new ServeError(`${duplex.describe}: ${what} failed${exit}: ${detail}`);
}
