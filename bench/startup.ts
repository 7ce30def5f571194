// startup: what one start of nsh costs, next to a hello world compiled by the same Bun with the
// same `bun build` flags as build.ts (built into a temporary directory). Every hook start, agent
// start and nix-sigstop run pays it. Rounds are interleaved (order rotated each round) after one
// warm-up round, so the machine's load falls on every variant alike. Measured per run:
//   CPU      user + system of the whole process (all threads), from its rusage at exit
//   CPU to first answer   for the hook and the agent: the process's CPU clock when its first
//            answer arrived (clock_gettime on the process's CPU-time clock: all threads, ns)
// The hook is fed Nix's settings (all of them, builders '') and one `try`, then EOF: one it takes
// (feature nsh: `# accept`; the EOF then fails the build before any job) or one it declines
// (feature benchmark). The agent (`nsh __agent <dir>`) answers a log client's hello with its
// status line. Goal (issue 11): ≤ 1.5× the hello world's CPU.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { encodeSettings, encodeTry } from "../src/nix/hook-protocol.ts";
import { REPO, envNumber, max, median, min, onCleanup, sigstopBin, table, type Bench, type BenchResult } from "./lib.ts";

type CaseId = "hello" | "nsh-version" | "sigstop-version" | "hook-accept" | "hook" | "hook-sub" | "agent";
const LABEL: Record<CaseId, string> = {
  hello: "hello world (`bun build --compile`, build.ts's flags)",
  "nsh-version": "`nsh --version`",
  "sigstop-version": "`nix-sigstop --version`",
  "hook-accept": "hook `nsh 3` (settings, 1 try it accepts, EOF)",
  hook: "hook `nsh 3` (settings, 1 try it declines, EOF)",
  "hook-sub": "hook `nsh hook 3` (the same)",
  agent: "agent `nsh __agent <dir>` (to its status line)",
};
const GOAL = 1.5;

/** cpuMs: whole process (rusage); firstCpuMs / firstMs: at the first answer (hook, agent) */
type Run = {
  id: CaseId;
  round: number;
  cpuMs: number;
  ms: number;
  firstCpuMs?: number;
  firstMs?: number;
  ok: boolean;
  why?: string;
};

/** build.ts's `bun build` flags (so that a change there is measured here too), without entry and outfile. */
export function buildFlags(buildTs = fs.readFileSync(path.join(REPO, "build.ts"), "utf8")): string[] {
  // Every quoted --flag, but those that name nsh's files or packages (a one-line hello world has
  // nothing to leave out) and those build.ts passes to the binary it checks, not to `bun build`.
  const notForHello = new Set(["--outfile", "--external", "--version", "--help"]);
  const flags = [...buildTs.matchAll(/"(--[a-z][a-z0-9-]*(?:=[^"]*)?)"/g)].map((m) => m[1]!);
  const out = [...new Set(flags.filter((f) => !notForHello.has(f.replace(/=.*/, ""))))];
  return out.includes("--compile") ? out : ["--compile", "--minify", "--bytecode", "--format=esm", "--sourcemap=none"];
}

let clock: ((pid: number) => number) | undefined;
/** A running process's CPU time in ms (all its threads, those that ended included): its CPU-time clock. */
function cpuClockMs(pid: number): number {
  if (!clock) {
    const lib = dlopen("libc.so.6", { clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
    const ts = new BigInt64Array(2);
    // Linux: the process CPU clock of pid is ((~pid) << 3) | CPUCLOCK_SCHED (2), as clock_getcpuclockid makes it.
    clock = (p) =>
      lib.symbols.clock_gettime((~p << 3) | 2, ptr(ts)) === 0 ? Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6 : Number.NaN;
  }
  return clock(pid);
}

const rusageMs = (p: Bun.Subprocess): number => {
  const u = p.resourceUsage();
  return u ? Number(u.cpuTime.user + u.cpuTime.system) / 1000 : Number.NaN;
};

async function withTimeout<T>(p: Promise<T>, ms: number, what: string, kill: () => void): Promise<T> {
  let timer: Timer | undefined;
  try {
    const late = new Promise<T>((_, reject) => {
      timer = setTimeout(() => {
        kill();
        reject(new Error(`${what}: no answer in ${ms} ms`));
      }, ms);
    });
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads lines of `stream` until one satisfies `want`; returns it (undefined at EOF). */
async function lineWhere(stream: ReadableStream<Uint8Array>, want: (l: string) => boolean): Promise<string | undefined> {
  const reader = stream.getReader();
  let buf = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return undefined;
      buf += new TextDecoder().decode(value);
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (want(line)) return line;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

async function plain(id: CaseId, round: number, argv: string[], env: Record<string, string>): Promise<Run> {
  const t0 = performance.now();
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env, cwd: "/" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  const ms = performance.now() - t0;
  const ok = code === 0 && out.trim().length > 0;
  const why = ok ? undefined : `exit ${code}: ${(await new Response(p.stderr).text()).slice(-300)}`;
  return { id, round, cpuMs: rusageMs(p), ms, ok, why };
}

const system = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

/**
 * The settings blob: as many settings as Nix sends (all of them: `nix show-config`, 91 with 2.8),
 * builders '' (no machines); three settings when nix is not at hand.
 */
export function settingsBlob(): { blob: Uint8Array; count: number } {
  const text = (value: unknown): string =>
    Array.isArray(value)
      ? value.join(" ")
      : value && typeof value === "object"
        ? Object.entries(value).map(([k, v]) => `${k}=${v}`).join(" ")
        : String(value);
  const settings = new Map<string, string>();
  const argv = ["nix", "show-config", "--extra-experimental-features", "nix-command", "--json"];
  const shown = Bun.spawnSync(argv, { stdout: "pipe", stderr: "ignore" });
  try {
    const all = JSON.parse(shown.stdout.toString()) as Record<string, { value: unknown }>;
    for (const [name, s] of Object.entries(all)) settings.set(name, text(s.value));
  } catch {
    settings.set("system", system).set("max-jobs", "1");
  }
  settings.set("builders", "");
  return { blob: encodeSettings(settings), count: settings.size };
}

type HookCase = { blob: Uint8Array; feature: string; want: string };

async function hookRun(id: CaseId, round: number, argv: string[], env: Record<string, string>, c: HookCase): Promise<Run> {
  const { blob, feature, want } = c;
  const drvPath = `/nix/store/${"a".repeat(32)}-startup.drv`;
  const req = encodeTry({ amWilling: true, system, drvPath, requiredFeatures: [feature] });
  const t0 = performance.now();
  // Nix writes the settings and the first try as soon as the hook is started.
  const p = Bun.spawn(argv, { stdin: "pipe", stdout: "ignore", stderr: "pipe", env, cwd: "/" });
  const stop = onCleanup(() => p.kill("SIGKILL"));
  p.stdin.write(blob);
  p.stdin.write(req);
  await p.stdin.flush();
  const kill = () => p.kill("SIGKILL");
  const answer = await withTimeout(lineWhere(p.stderr, (l) => l.startsWith("# ")), 30_000, argv.join(" "), kill);
  const firstCpuMs = cpuClockMs(p.pid);
  const firstMs = performance.now() - t0;
  await p.stdin.end();
  const code = await withTimeout(p.exited, 10_000, `${argv.join(" ")} after EOF`, () => p.kill("SIGKILL"));
  const ms = performance.now() - t0;
  stop();
  // After an accept, EOF instead of the inputs makes nsh fail (exit 1): the build never starts.
  const ok = code === (want === "# accept" ? 1 : 0) && answer === want;
  const why = ok ? undefined : `exit ${code}, answer ${JSON.stringify(answer)}`;
  return { id, round, cpuMs: rusageMs(p), ms, firstCpuMs, firstMs, ok, why };
}

async function agentRun(round: number, nsh: string, env: Record<string, string>, scratch: string): Promise<Run> {
  const jobDir = fs.mkdtempSync(path.join(scratch, "job-"));
  const nixStore = Bun.which("nix-store");
  const args = ["__agent", jobDir, "--first-contact-timeout", "30", ...(nixStore ? ["--nix-bin-dir", path.dirname(nixStore)] : [])];
  const t0 = performance.now();
  const p = Bun.spawn([nsh, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe", env, cwd: "/" });
  const stop = onCleanup(() => p.kill("SIGKILL"));
  try {
    const sock = path.join(jobDir, "agent.sock");
    const line = await withTimeout(
      (async () => {
        const got = Promise.withResolvers<string>();
        let text = "";
        // The socket file appears at bind(2), a moment before listen(2): a refusal means "again".
        const connect = () => Bun.connect({
          unix: sock,
          socket: {
            open: (s) => void s.write("log\n"),
            data: (_s, d) => {
              text += new TextDecoder().decode(d);
              if (text.includes("\n")) got.resolve(text.slice(0, text.indexOf("\n")));
            },
            close: () => got.resolve(text),
            error: (_s, e) => got.reject(e),
          },
        });
        for (;;) {
          try {
            await connect();
            break;
          } catch {
            await Bun.sleep(0.2);
          }
        }
        return got.promise;
      })(),
      30_000,
      "nsh __agent",
      () => p.kill("SIGKILL"),
    );
    const firstCpuMs = cpuClockMs(p.pid);
    const firstMs = performance.now() - t0;
    p.kill("SIGTERM");
    await withTimeout(p.exited, 10_000, "nsh __agent after SIGTERM", () => p.kill("SIGKILL"));
    const ok = line.startsWith("nsh-agent ");
    const why = ok ? undefined : `status line ${JSON.stringify(line)}`;
    return { id: "agent", round, cpuMs: rusageMs(p), ms: performance.now() - t0, firstCpuMs, firstMs, ok, why };
  } finally {
    stop();
    fs.rmSync(jobDir, { recursive: true, force: true });
  }
}

const fmt = (x: number | undefined, digits = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : "–");
const range = (xs: number[]) => (xs.length ? `${fmt(min(xs))}–${fmt(max(xs))}` : "–");

export const startup: Bench = {
  name: "startup",
  title: "start-up CPU of nsh --version, nix-sigstop --version, the hook and the agent vs a compiled hello world",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_STARTUP_ROUNDS", 30);
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");
    const sigstop = sigstopBin();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-bench-startup-"));
    onCleanup(() => fs.rmSync(scratch, { recursive: true, force: true }));

    const flags = buildFlags();
    fs.writeFileSync(path.join(scratch, "hello.ts"), 'console.log("hello");\n');
    const hello = path.join(scratch, "hello");
    const buildArgv = [process.execPath, "build", ...flags, path.join(scratch, "hello.ts"), "--outfile", hello];
    const build = (argv: string[]) => {
      const built = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
      const why = built.stderr.toString().slice(-500);
      if (built.exitCode !== 0) throw new Error(`building the hello world failed: ${why}`);
    };
    build(buildArgv);
    // build.ts lays nsh's bytecode out by a profile of the hook's start (--bytecode-order): the hello world
    // gets the same flag with a profile of its own run, recorded as scripts/bytecode-order.ts records nsh's.
    const ordered = fs.readFileSync(path.join(REPO, "build.ts"), "utf8").includes("--bytecode-order");
    if (ordered) {
      const profile = path.join(scratch, "hello-order.txt");
      Bun.spawnSync([hello], { stdout: "ignore", env: { ...process.env, BUN_BYTECODE_ORDER_OUT: profile } });
      build([...buildArgv.slice(0, 2), ...flags, `--bytecode-order=${profile}`, ...buildArgv.slice(2 + flags.length)]);
      flags.push("--bytecode-order=<its own profile>");
    }

    const conf = path.join(scratch, "nsh.conf");
    // Set up enough that the hook would submit (readiness.ts): else it declines every try without looking.
    const jwt = path.join(scratch, "jwt");
    fs.writeFileSync(jwt, "header.payload.signature\n", { mode: 0o600 });
    fs.writeFileSync(
      conf,
      "# nsh's defaults: Slurm, feature nsh; the try asks for 'benchmark', which nsh declines\n" +
        `slurm-state-dir = ${path.join(scratch, "cluster")}\nslurm-jwt-token-file = ${jwt}\n`,
    );
    const env = { ...(process.env as Record<string, string>), NSH_CONF: conf };
    const settings = settingsBlob();
    const cases: Record<CaseId, (round: number) => Promise<Run>> = {
      hello: (r) => plain("hello", r, [hello], env),
      "nsh-version": (r) => plain("nsh-version", r, [nsh, "--version"], env),
      "sigstop-version": (r) => plain("sigstop-version", r, [sigstop, "--version"], env),
      "hook-accept": (r) => hookRun("hook-accept", r, [nsh, "3"], env, { blob: settings.blob, feature: "nsh", want: "# accept" }),
      hook: (r) => hookRun("hook", r, [nsh, "3"], env, { blob: settings.blob, feature: "benchmark", want: "# decline" }),
      "hook-sub": (r) => hookRun("hook-sub", r, [nsh, "hook", "3"], env, { blob: settings.blob, feature: "benchmark", want: "# decline" }),
      agent: (r) => agentRun(r, nsh, env, scratch),
    };
    const ids = Object.keys(cases) as CaseId[];
    const runs: Run[] = [];
    for (let round = 0; round <= rounds; round++) {
      const order = [...ids.slice(round % ids.length), ...ids.slice(0, round % ids.length)];
      for (const id of order) {
        const failed = (e: Error): Run => ({ id, round, cpuMs: Number.NaN, ms: Number.NaN, ok: false, why: e.message });
        const r = await cases[id](round).catch(failed);
        if (!r.ok) process.stderr.write(`  startup: ${LABEL[id]} failed: ${r.why}\n`);
        if (round > 0) runs.push(r);
      }
      if (round > 0 && round % 10 === 0) process.stderr.write(`  startup: round ${round}/${rounds}\n`);
    }

    const ok = (id: CaseId) => runs.filter((r) => r.id === id && r.ok);
    const helloCpu = median(ok("hello").map((r) => r.cpuMs));
    const ratio = (x: number) => (Number.isFinite(x) && helloCpu > 0 ? `${(x / helloCpu).toFixed(2)}×` : "–");
    const rows = ids.map((id) => {
      const rs = ok(id);
      const cpu = rs.map((r) => r.cpuMs);
      const first = rs.flatMap((r) => (r.firstCpuMs === undefined ? [] : [r.firstCpuMs]));
      const firstWall = rs.flatMap((r) => (r.firstMs === undefined ? [] : [r.firstMs]));
      return [
        LABEL[id],
        `${rs.length}/${runs.filter((r) => r.id === id).length}`,
        `${fmt(median(cpu))} (${range(cpu)})`,
        ratio(median(cpu)),
        first.length ? `${fmt(median(first))} (${range(first)})` : "–",
        first.length ? ratio(median(first)) : "–",
        fmt(median(rs.map((r) => r.ms))),
        firstWall.length ? fmt(median(firstWall)) : "–",
      ];
    });
    const tables = [
      table(
        ["process", "ok runs", "CPU ms, whole process: median (min–max)", "÷ hello", "CPU ms to first answer", "÷ hello"]
          .concat(["wall ms to exit", "wall ms to first answer"]),
        rows,
      ),
    ];
    const verdict = (id: CaseId, pick: (r: Run) => number | undefined) => {
      const x = median(ok(id).flatMap((r) => pick(r) ?? []));
      return `${LABEL[id]} ${fmt(x / helloCpu, 2)}× ${x / helloCpu <= GOAL ? "(met)" : "(NOT met)"}`;
    };
    const notes = [
      `${rounds} interleaved rounds after a warm-up round; hello world built with \`bun build ${flags.join(" ")}\` ` +
        `(Bun ${Bun.version}); the hook's settings blob holds ${settings.count} settings (${settings.blob.length} bytes).`,
      `Goal: CPU ≤ ${GOAL}× the hello world's. ${verdict("nsh-version", (r) => r.cpuMs)}; ` +
        `${verdict("hook-accept", (r) => r.firstCpuMs)} and ${verdict("hook", (r) => r.firstCpuMs)} (to the first answer); ` +
        `${verdict("sigstop-version", (r) => r.cpuMs)}.`,
      "Whole-process CPU comes from wait4's rusage: it includes the children the process reaped (the agent's nix-store).",
      `Load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}.`,
    ];
    return { tables, notes, data: { rounds, flags, bun: Bun.version, runs } };
  },
};
