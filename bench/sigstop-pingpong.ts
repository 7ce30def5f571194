// Ping-pong through nix-sigstop's daemon relay, without Nix: what one client↔daemon round trip
// costs direct and through the poll(2) relay (src/sigstop/relay.ts), and the relay's CPU time per
// round trip. (Until commit c8eef83 it also measured the event-loop proxy that the relay replaced.) Each round trip has the shape of one .drv written by `nix eval`
// through the daemon: the client sends 80 then 338 bytes, the "daemon" answers 288 bytes.
// Client, proxy and server are three processes, as in real use. Not part of `npm run bench`:
//   [PINGPONG_WORK_US=µs the server works per request] bun bench/sigstop-pingpong.ts [round trips, default 20000] [repeats, default 3]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connectUnix, listenUnix, accept, recv, send, PollSet, POLLIN, EAGAIN } from "../src/sys/sock.ts";

const REQ = [80, 338];
const REPLY = 288;
const WORK_US = Number(process.env.PINGPONG_WORK_US ?? 0);

/** Blocks until `n` bytes have arrived on `fd` (false at EOF). */
function recvExactly(fd: number, buf: Uint8Array, n: number, set: PollSet): boolean {
  let got = 0;
  while (got < n) {
    const r = recv(fd, buf.subarray(got), n - got);
    if (r === -EAGAIN) {
      set.clear();
      set.add(fd, POLLIN);
      set.wait(-1);
      continue;
    }
    if (r <= 0) return false;
    got += r;
  }
  return true;
}

function server(sock: string): void {
  const lfd = listenUnix(sock);
  process.stdout.write("ready\n");
  const set = new PollSet();
  const buf = new Uint8Array(4096);
  const reply = new Uint8Array(REPLY).fill(7);
  for (;;) {
    set.clear();
    set.add(lfd, POLLIN);
    set.wait(-1);
    const fd = accept(lfd);
    if (fd < 0) continue;
    while (recvExactly(fd, buf, REQ[0]! + REQ[1]!, set)) {
      // Like the daemon, which works a while on each request (a proxy that slept wakes up cold).
      const until = Bun.nanoseconds() + WORK_US * 1000;
      while (Bun.nanoseconds() < until);
      send(fd, reply);
    }
  }
}

function client(sock: string, n: number): void {
  const fd = connectUnix(sock);
  const set = new PollSet();
  const bufs = REQ.map((len) => new Uint8Array(len).fill(1));
  const buf = new Uint8Array(4096);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = Bun.nanoseconds();
    for (const b of bufs) send(fd, b);
    if (!recvExactly(fd, buf, REPLY, set)) throw new Error("server went away");
    times[i] = Bun.nanoseconds() - t0;
  }
  times.sort();
  const total = times.reduce((a, b) => a + b, 0);
  process.stdout.write(`${JSON.stringify({ meanUs: total / n / 1000, p50Us: times[n >> 1]! / 1000, p99Us: times[Math.floor(n * 0.99)]! / 1000 })}\n`);
}

async function proxy(listen: string, upstream: string): Promise<void> {
  const { Relay } = await import("../src/sigstop/relay.ts");
  const relay = new Relay({ listenFd: listenUnix(listen), bound: 8 << 20, openUpstream: () => connectUnix(upstream) });
  process.stdout.write("ready\n");
  for (;;) relay.step(-1);
}

async function startRole(args: string[]): Promise<ReturnType<typeof Bun.spawn>> {
  const p = Bun.spawn([process.execPath, import.meta.path, ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  if (!new TextDecoder().decode(first.value).startsWith("ready")) throw new Error(`${args[0]} did not start`);
  reader.releaseLock();
  return p;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function main(): Promise<void> {
  const [role, ...rest] = process.argv.slice(2);
  if (role === "server") return server(rest[0]!);
  if (role === "client") return client(rest[0]!, Number(rest[1]));
  if (role === "proxy") return proxy(rest[0]!, rest[1]!);
  const n = Number(role ?? 20000);
  const repeats = Number(rest[0] ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pingpong-"));
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  try {
    const daemon = path.join(dir, "daemon.sock");
    procs.push(await startRole(["server", daemon]));
    const targets: Record<string, string> = { direct: daemon };
    targets.relay = path.join(dir, "relay.sock");
    const relay = await startRole(["proxy", targets.relay, daemon]);
    procs.push(relay);
    // PINGPONG_PIN_PROXY=<cpu>: the relay on one CPU (cross-CPU wake-ups are dear in a VM).
    if (process.env.PINGPONG_PIN_PROXY) Bun.spawnSync(["taskset", "-a", "-p", "-c", process.env.PINGPONG_PIN_PROXY, String(relay.pid)]);
    const pids: Record<string, number> = { relay: relay.pid };
    console.log(`${n} round trips (client sends ${REQ.join(" + ")} B, server works ${WORK_US} µs and answers ${REPLY} B), load ${os.loadavg()[0]!.toFixed(2)}`);
    for (let r = 0; r < repeats; r++) {
      for (const [kind, sock] of Object.entries(targets)) {
        const pid = pids[kind];
        const cpu0 = pid ? cpuSeconds(pid) : 0;
        const out = Bun.spawnSync([process.execPath, import.meta.path, "client", sock, String(n)]);
        const cpuUs = pid ? ((cpuSeconds(pid) - cpu0) * 1e6) / n : 0;
        const res = JSON.parse(out.stdout.toString()) as { meanUs: number; p50Us: number; p99Us: number };
        const cpu = pid ? `  proxy CPU ${cpuUs.toFixed(1).padStart(5)} µs` : "";
        console.log(`  ${kind.padEnd(6)} mean ${res.meanUs.toFixed(1).padStart(6)} µs  p50 ${res.p50Us.toFixed(1).padStart(6)} µs  p99 ${res.p99Us.toFixed(1).padStart(7)} µs${cpu}`);
      }
    }
  } finally {
    for (const p of procs) p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
