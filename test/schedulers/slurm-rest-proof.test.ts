// Expected behaviour: once one hook's ping has proved a token with a slurmrestd, the hooks after it
// (same server, user and token, within the proof's lifetime) prepare without asking slurmrestd anything,
// so a wide graph does not spend a rate-limited request per build on pings. What the proof vouched for
// is still checked where it matters: another token is pinged; a token slurmctld refuses fails the submit
// with the authentication error (and the proof is dropped); an API version slurmrestd no longer serves
// is negotiated again at the submit, which then goes through. The polite layer's rate limit (the gate)
// is paid only when prepare sends a request. Real slurmrestd (the private lab, 22.05 or a version suite).
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { JobSpec } from "../../src/schedulers/scheduler.ts";
import { SlurmRestScheduler, type SlurmRestOptions } from "../../src/schedulers/slurm-rest.ts";
import { SUPPORTED_VERSIONS } from "../../src/schedulers/slurm-rest-shapes.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";
import { thrown } from "./thrown.ts";

let lab: SlurmLab;
let token: string;

beforeAll(async () => {
  lab = await startSlurmLab({ name: "rest-proof" });
  token = await lab.token("root");
});
afterAll(async () => {
  await lab?.cleanup();
});

/** A hook's view of the state directory: the remembered version and the proofs, shared by every scheduler made. */
function stateDir() {
  let version: string | undefined;
  const proofs = new Map<string, number>();
  const forgotten: string[] = [];
  return {
    rememberedVersion: { get: () => version, set: (v: string) => void (version = v), forget: () => void (version = undefined) },
    proof: {
      recent: (k: string) => proofs.has(k),
      record: (k: string) => void proofs.set(k, Date.now()),
      forget: (k: string) => void (forgotten.push(k), proofs.delete(k)),
    },
    setVersion: (v: string) => void (version = v),
    proofs,
    forgotten,
  };
}

function hook(dir: ReturnType<typeof stateDir>, o: Partial<SlurmRestOptions> = {}) {
  const requests: string[] = [];
  const s = new SlurmRestScheduler({
    host: "127.0.0.1",
    port: lab.restPort,
    token,
    user: "root",
    rememberedVersion: dir.rememberedVersion,
    proof: dir.proof,
    fetch: (url, init) => (requests.push(`${init.method} ${new URL(url).pathname}`), fetch(url, init)),
    ...o,
  });
  let gated = 0;
  const gate = async () => void gated++;
  return { s, requests, gate, gated: () => gated };
}

const spec = (name: string): JobSpec => ({
  name,
  script: "#!/bin/sh\ntrue\n",
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/bin:/bin" },
  stdout: `${lab.jobsDir}/${name}-%j.out`,
  stderr: `${lab.jobsDir}/${name}-%j.err`,
  timeLimitMinutes: 5,
});


test("the hooks after a proving ping ask slurmrestd nothing before their submit", async () => {
  const dir = stateDir();
  const first = hook(dir);
  await first.s.prepare(first.gate);
  expect(first.requests.some((r) => r.endsWith("/ping"))).toBe(true);
  expect(first.gated()).toBe(1);
  expect(dir.proofs.size).toBe(1);

  const next = hook(dir);
  await next.s.prepare(next.gate);
  expect(next.requests).toEqual([]);
  expect(next.gated()).toBe(0);
  const { id } = await next.s.submit(spec("proven"));
  expect(next.requests.filter((r) => r.startsWith("POST "))).toHaveLength(1);
  await next.s.cancel(id);

  // Another token (here: one refused by slurmctld) has no proof: it is pinged, and refused at once.
  const forged = token.replace(/.{6}$/, "AAAAAA");
  const other = hook(dir, { token: forged });
  const e = await thrown(other.s.prepare(other.gate));
  expect(e.kind).toBe("auth");
  expect(other.requests.some((r) => r.endsWith("/ping"))).toBe(true);
});

test("a proof that no longer holds: a refused token fails the submit clearly, and the proof is dropped", async () => {
  const dir = stateDir();
  await hook(dir).s.prepare();
  const forged = token.replace(/.{6}$/, "AAAAAA");
  // As if the token file had been replaced by a bad one that an earlier hook had proved (same key).
  dir.proof.recent = () => true;
  const late = hook(dir, { token: forged });
  await late.s.prepare(late.gate);
  expect(late.requests).toEqual([]);
  const e = await thrown(late.s.submit(spec("refused")));
  expect(e.kind).toBe("auth");
  expect(e.message).toStartWith("authentication failed: check slurm-jwt-token");
  expect(dir.forgotten.length).toBeGreaterThan(0);
});

test("a proven version slurmrestd no longer serves is negotiated again at the submit, which goes through", async () => {
  const dir = stateDir();
  await hook(dir).s.prepare();
  const gone = SUPPORTED_VERSIONS.find((v) => !lab.apiVersions.includes(v))!;
  dir.setVersion(gone);
  const h = hook(dir);
  await h.s.prepare(h.gate);
  expect(h.requests).toEqual([]);
  const { id } = await h.s.submit(spec("upgraded"));
  expect(h.requests[0]).toBe(`POST /slurm/${gone}/job/submit`);
  expect(h.requests.filter((r) => r.startsWith("POST "))).toHaveLength(2);
  expect(h.s.describe()).not.toContain(gone);
  await h.s.cancel(id);
});
