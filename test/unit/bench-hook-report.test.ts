// Expected: the pure parts of the hook benchmark's build cases (bench/hook-report.ts) read
// NSH_BENCH_PILOT as nsh.conf lines separated by ';' (a part that is not 'setting = value', or no
// positive pilot-idle-time, is refused naming the variable), read NSH_BENCH_VARIANTS (unknown or
// repeated names refused), count Slurm jobs per build from the counted successful runs, give the
// pilot vs nsh vs build-remote ratios of median wall times, and judge issue 11's goals as PASS, FAIL
// or SKIP (not measured). The benchmark itself is not run here.
import { expect, test } from "bun:test";
import {
  DEFAULT_PILOT, issue11Verdicts, jobsPerBuild, jobsTable, parsePilotSettings, parseVariants, ratioLine,
  type BuildRun, type CaseId, type Variant,
} from "../../bench/hook-report.ts";

test("parsePilotSettings: ';' or newlines separate nsh.conf lines; bad parts are named", () => {
  const ok: Array<[string, string]> = [
    ["pilot-idle-time = 30; pilot-max-jobs = 16", "pilot-idle-time = 30\npilot-max-jobs = 16\n"],
    ["pilot-idle-time=5;;  pilot-max-jobs =2 ;", "pilot-idle-time = 5\npilot-max-jobs = 2\n"],
    ["pilot-idle-time = 30\npilot-builds-per-job = 4", "pilot-idle-time = 30\npilot-builds-per-job = 4\n"],
    [DEFAULT_PILOT, "pilot-idle-time = 30\npilot-max-jobs = 4\npilot-builds-per-job = 4\n"],
  ];
  for (const [text, want] of ok) expect(parsePilotSettings(text)).toBe(want);
  const bad: Array<[string, RegExp]> = [
    ["", /NSH_BENCH_PILOT: empty/],
    ["pilot-idle-time 30", /NSH_BENCH_PILOT: 'pilot-idle-time 30' is not 'setting = value'/],
    ["pilot-idle-time = 30; = 4", /'= 4' is not/],
    ["pilot-max-jobs = 4", /needs pilot-idle-time/],
    ["pilot-idle-time = 0", /needs pilot-idle-time/],
  ];
  for (const [text, want] of bad) expect(() => parsePilotSettings(text)).toThrow(want);
});

test("parseVariants: known names in the given order; unknown, empty or repeated lists refused", () => {
  expect(parseVariants("nsh,pilot,br,local")).toEqual(["nsh", "pilot", "br", "local"]);
  expect(parseVariants(" pilot , br")).toEqual(["pilot", "br"]);
  for (const bad of ["nsh,arrays", "", "nsh,nsh"]) expect(() => parseVariants(bad)).toThrow(/NSH_BENCH_VARIANTS/);
});

const run = (caseId: CaseId, variant: Variant, round: number, ms: number, o: Partial<BuildRun> = {}): BuildRun => ({
  caseId, variant, round, ms, salt: `s${round}`, ok: true, load1: 0, builds: caseId === "one" ? 1 : 51, ...o,
});

/** (b): nsh 20 s with 51 jobs, pilot 6 s with 4–5 jobs, build-remote 20–24 s; a failed pilot run and a warm-up */
const WIDE: BuildRun[] = [
  run("wide", "nsh", 0, 99_000, { jobs: 51 }),
  run("wide", "nsh", 1, 20_000, { jobs: 51, submits: 51 }),
  run("wide", "nsh", 2, 22_000, { jobs: 51, submits: 52 }),
  run("wide", "pilot", 1, 6_000, { jobs: 4, submits: 4 }),
  run("wide", "pilot", 2, 7_000, { jobs: 5, submits: 5 }),
  run("wide", "pilot", 3, 1_000, { jobs: 1, ok: false, why: "exit 1" }),
  run("wide", "br", 1, 20_000),
  run("wide", "br", 2, 24_000),
];

test("jobsPerBuild and jobsTable: counted successful runs only, jobs and POSTs per nsh variant", () => {
  expect(jobsPerBuild(WIDE, "wide", "pilot")).toEqual([4 / 51, 5 / 51]);
  expect(jobsPerBuild(WIDE, "wide", "br")).toEqual([]);
  const t = jobsTable(WIDE, ["wide"], ["nsh", "pilot", "br"], () => "(b)").split("\n");
  expect(t.length).toBe(4); // head, rule, nsh, pilot (build-remote submits no jobs)
  expect(t[2]).toBe("| (b) | nsh (one Slurm job per build) | 2 | 51 | 51 (51–51) | 51.5 (51–52) | 1.000 (1.000–1.000) | 21000 |");
  expect(t[3]).toBe("| (b) | nsh with pilot jobs | 2 | 51 | 4.5 (4–5) | 4.5 (4–5) | 0.088 (0.078–0.098) | 6500 |");
});

test("ratioLine: ratios of median wall times for the variants that ran", () => {
  expect(ratioLine(WIDE, "wide", "(b) 50 + aggregate")).toBe(
    "(b) 50 + aggregate: pilot / nsh 0.31, pilot / build-remote 0.30, nsh / build-remote 0.95 " +
      "(ratios of median wall times: pilot 6500 ms, nsh 21000 ms, build-remote 22000 ms)",
  );
  expect(ratioLine(WIDE.filter((r) => r.variant !== "pilot"), "wide", "(b)")).toBe(
    "(b): nsh / build-remote 0.95 (ratios of median wall times: nsh 21000 ms, build-remote 22000 ms)",
  );
  expect(ratioLine(WIDE, "wider", "(b2)")).toBeUndefined();
});

test("issue11Verdicts: PASS, FAIL or SKIP per goal", () => {
  const words = (runs: BuildRun[], one?: { judgedMs: number; brOverMs: number }) => issue11Verdicts(runs, one).map((v) => v.line.split(":")[0]);
  const wider = [run("wider", "nsh", 1, 60_000, { builds: 201 }), run("wider", "pilot", 1, 30_000, { builds: 201 })];
  // Pilot 6.5 s ≤ 0.35 × 22 s; but one counted pilot run failed, so its jobs/builds goal fails.
  expect(words([...WIDE, ...wider], { judgedMs: 300, brOverMs: 350 })).toEqual([
    "PASS (b) best nsh variant ≤ 0.35 × build-remote",
    "FAIL (b) pilot Slurm jobs / builds ≤ 0.1 (every counted run)",
    "PASS (b) pilot faster than nsh (one job per build)",
    "PASS (b2) no failure",
    "PASS (a) nsh's overhead beyond Slurm ≤ build-remote's overhead",
  ]);
  const noFail = WIDE.filter((r) => r.ok);
  expect(words(noFail)[1]).toBe("PASS (b) pilot Slurm jobs / builds ≤ 0.1 (every counted run)");
  // Too many jobs in one run; pilot slower than nsh; (b2) failed; (a) over.
  const slow = [...WIDE.filter((r) => r.variant !== "pilot"), run("wide", "pilot", 1, 23_000, { jobs: 6 })];
  const failedWider = [run("wider", "pilot", 1, 600_000, { builds: 201, ok: false, why: "timed out" })];
  expect(words([...slow, ...failedWider], { judgedMs: 400, brOverMs: 350 })).toEqual([
    "FAIL (b) best nsh variant ≤ 0.35 × build-remote",
    "FAIL (b) pilot Slurm jobs / builds ≤ 0.1 (every counted run)",
    "FAIL (b) pilot faster than nsh (one job per build)",
    "FAIL (b2) no failure",
    "FAIL (a) nsh's overhead beyond Slurm ≤ build-remote's overhead",
  ]);
  // Nothing measured: every goal says SKIP, none passes.
  expect(issue11Verdicts([]).map((v) => v.pass)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  expect(issue11Verdicts([]).every((v) => v.line.startsWith("SKIP "))).toBe(true);
});
