// `nsh __agent-connect JOBDIR MODE`, run over ssh on the job's node: joins the hook's ssh channel
// (stdin/stdout) to the agent's unix socket. The agent may not be listening yet when the job has
// just started: we watch the job directory for its socket (inotify, not a polling loop).
import fs from "node:fs";
import path from "node:path";
import { AGENT_SOCKET, parseHello } from "./protocol.ts";

async function waitForSocket(dir: string, timeoutMs: number): Promise<string> {
  const sock = path.join(dir, AGENT_SOCKET);
  if (fs.existsSync(sock)) return sock;
  if (timeoutMs <= 0) throw new Error(`no agent socket in ${dir} (its agent has left)`);
  const appeared = Promise.withResolvers<void>();
  const watcher = fs.watch(dir, (_ev, name) => {
    if (name === AGENT_SOCKET && fs.existsSync(sock)) appeared.resolve();
  });
  // It may have appeared between the first look and the watch.
  if (fs.existsSync(sock)) appeared.resolve();
  const missing = () =>
    new Error(`no agent socket in ${dir} after ${timeoutMs / 1000} s (did the job start nsh's agent?)`);
  const timer = setTimeout(() => appeared.reject(missing()), timeoutMs);
  try {
    await appeared.promise;
    return sock;
  } finally {
    clearTimeout(timer);
    watcher.close();
  }
}

/**
 * Connects to the agent's socket. The file appears when the agent binds it, a moment before it
 * listens: a refusal right then is retried for a short while.
 */
async function connectSoon(
  sockPath: string, handlers: Parameters<typeof Bun.connect>[0]["socket"], withinMs = 5000,
): ReturnType<typeof Bun.connect> {
  const end = Date.now() + withinMs;
  for (;;) {
    try {
      return await Bun.connect({ unix: sockPath, socket: handlers });
    } catch (e) {
      if (Date.now() > end) throw e;
      await Bun.sleep(50);
    }
  }
}

export async function runAgentConnect(argv: readonly string[]): Promise<number> {
  const [dir, mode, wait] = argv;
  const waitSec = wait === undefined ? 60 : Number(wait);
  if (!dir || !mode || !parseHello(mode) || !(waitSec >= 0)) {
    process.stderr.write("usage: nsh __agent-connect JOBDIR serve|log [SECONDS-TO-WAIT-FOR-THE-AGENT]\n");
    return 2;
  }
  let sockPath: string;
  try {
    sockPath = await waitForSocket(dir, waitSec * 1000);
  } catch (e) {
    process.stderr.write(`nsh: ${(e as Error).message}\n`);
    return 1;
  }
  const closed = Promise.withResolvers<void>();
  let drained: PromiseWithResolvers<void> | undefined;
  const sock = await connectSoon(sockPath, {
    data(s, data) {
      // The ssh channel behind stdout may be slower than the agent: hold the agent back meanwhile.
      if (!process.stdout.write(data)) {
        s.pause();
        process.stdout.once("drain", () => s.resume());
      }
    },
    drain() {
      drained?.resolve();
    },
    close() {
      drained?.resolve();
      closed.resolve();
    },
    error() {
      closed.resolve();
    },
  }).catch((e: Error) => {
    process.stderr.write(`nsh: cannot connect to the agent's socket ${sockPath}: ${e.message}\n`);
    return undefined;
  });
  if (!sock) return 1;
  sock.write(`${mode}\n`);
  void (async () => {
    for await (const chunk of Bun.stdin.stream()) {
      let off = 0;
      while (off < chunk.length) {
        off += Math.max(0, sock.write(chunk.subarray(off)));
        if (off < chunk.length) {
          drained = Promise.withResolvers<void>();
          await drained.promise;
        }
      }
    }
    sock.end();
  })().catch(() => sock.end());
  await closed.promise;
  return 0;
}
