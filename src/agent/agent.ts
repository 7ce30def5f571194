// The job's agent: nsh itself, run by the job script on the node. It waits for the hook on a unix
// socket in the job directory (no polling: the allocation idles until the hook connects), runs
// `nix-store --serve --write` inside the job for the hook's serve sessions, streams their stderr
// (the build log) to the hook, and stays until the hook says it has the outputs. If the hook goes
// away (its connections close and none comes back), it ends the job rather than hold the allocation.
import type { Socket, Subprocess } from "bun";
import fs from "node:fs";
import path from "node:path";
import { AGENT_LOG, AGENT_SOCKET, parseHello, type AgentOptions } from "./protocol.ts";

interface Client {
  mode?: "serve" | "log";
  hello: Uint8Array;
  child?: Subprocess<"pipe", "pipe", "pipe">;
  /** Resolved when the socket can take more (nix-store's output waits for it). */
  drained?: PromiseWithResolvers<void>;
  /** Bytes written to nix-store's stdin and not yet flushed (the hook's uploads wait for them). */
  pending: number;
}

const HIGH_WATER = 4 << 20;

/** Writes all of `chunk`, waiting for the socket to drain when it is full: bounded memory. */
async function writeAll(s: Socket<Client>, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const n = s.write(chunk.subarray(off));
    off += Math.max(0, n);
    if (off < chunk.length) {
      s.data.drained = Promise.withResolvers<void>();
      await s.data.drained.promise;
    }
  }
}

/** Feeds nix-store's stdin; above the high-water mark the hook's socket pauses until it is flushed. */
function feed(s: Socket<Client>, child: Subprocess<"pipe", "pipe", "pipe">, data: Uint8Array): void {
  child.stdin.write(data);
  s.data.pending += data.length;
  if (s.data.pending < HIGH_WATER) return;
  s.pause();
  void Promise.resolve(child.stdin.flush()).then(() => {
    s.data.pending = 0;
    s.resume();
  });
}

export async function runAgent(o: AgentOptions): Promise<number> {
  const sockPath = path.join(o.jobDir, AGENT_SOCKET);
  const logFile = fs.openSync(path.join(o.jobDir, AGENT_LOG), "a");
  const logs = new Set<Socket<Client>>();
  const children = new Set<Subprocess>();
  const finished = Promise.withResolvers<number>();
  let open = 0;
  let everConnected = false;
  let lonelySince = Date.now();
  const nixStore = o.nixBinDir ? path.join(o.nixBinDir, "nix-store") : "nix-store";
  const say = (line: string) => {
    fs.writeSync(logFile, line);
    for (const l of logs) l.write(line);
  };

  fs.rmSync(sockPath, { force: true });
  const server = Bun.listen<Client>({
    unix: sockPath,
    socket: {
      open(s) {
        s.data = { hello: new Uint8Array(0), pending: 0 };
        open++;
        everConnected = true;
      },
      data(s, data) {
        const c = s.data;
        if (c.mode === "serve") return void (c.child && feed(s, c.child, data));
        if (c.mode === "log") {
          if (new TextDecoder().decode(data).includes("done")) finished.resolve(0);
          return;
        }
        // The request line may share a packet with the first serve protocol bytes: split as bytes.
        const buf = new Uint8Array(c.hello.length + data.length);
        buf.set(c.hello);
        buf.set(data, c.hello.length);
        const nl = buf.indexOf(10);
        if (nl < 0) return void (c.hello = buf);
        const line = new TextDecoder().decode(buf.subarray(0, nl));
        const mode = parseHello(line);
        const rest = buf.slice(nl + 1);
        if (!mode) return void s.end(`nsh agent: unknown request '${line}'\n`);
        c.mode = mode;
        if (mode === "log") return void logs.add(s);
        c.child = startServe(s, rest);
      },
      drain(s) {
        s.data.drained?.resolve();
      },
      close(s) {
        s.data.drained?.resolve();
        open--;
        if (open === 0) lonelySince = Date.now();
        logs.delete(s);
        if (s.data.child) void s.data.child.stdin.end();
      },
      error() {},
    },
  });

  function startServe(s: Socket<Client>, first: Uint8Array): Subprocess<"pipe", "pipe", "pipe"> {
    // nsh accepted the build because the cluster offers its features: the node's Nix must agree.
    const features = o.systemFeatures.length ? ["--option", "extra-system-features", o.systemFeatures.join(" ")] : [];
    const child = Bun.spawn([nixStore, "--serve", "--write", ...(o.remoteStore ? ["--store", o.remoteStore] : []), ...features], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    children.add(child);
    if (first.length) child.stdin.write(first);
    void (async () => {
      for await (const chunk of child.stdout) await writeAll(s, chunk);
      s.end();
    })().catch(() => s.end());
    void (async () => {
      let partial = "";
      for await (const chunk of child.stderr) {
        const lines = (partial + new TextDecoder().decode(chunk)).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) say(`${l}\n`);
      }
      if (partial) say(`${partial}\n`);
    })().catch(() => {});
    void child.exited.then(() => children.delete(child));
    return child;
  }

  // The hook is gone when nobody has been connected for a while after it came, or it never came.
  const watch = setInterval(() => {
    const quiet = Date.now() - lonelySince;
    if (open > 0) return;
    if (everConnected && quiet > o.orphanGraceMs) finished.resolve(3);
    else if (!everConnected && quiet > o.firstContactTimeoutMs) finished.resolve(4);
  }, 1000);
  const onSignal = () => finished.resolve(143);
  process.on("SIGTERM", onSignal);

  const code = await finished.promise;
  clearInterval(watch);
  for (const c of children) c.kill("SIGTERM");
  if (code === 3) fs.writeSync(logFile, "nsh agent: the hook went away; ending the job\n");
  if (code === 4) fs.writeSync(logFile, "nsh agent: no hook connected in time; ending the job\n");
  if (code === 0 && o.collectGarbage) {
    const gc = Bun.spawnSync([nixStore, "--gc", ...(o.remoteStore ? ["--store", o.remoteStore] : [])], { stdout: "ignore", stderr: "pipe" });
    fs.writeSync(logFile, `nsh agent: collect-garbage: exit ${gc.exitCode}\n`);
  }
  for (const l of logs) l.end("bye\n");
  server.stop(true);
  fs.rmSync(sockPath, { force: true });
  fs.closeSync(logFile);
  return code;
}
