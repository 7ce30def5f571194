// Expected: the login-host check before a job (make the job's directory, look for a verified agent)
// is asked once more when its ssh session ended without an exit status or signal; a second such
// answer, or a real failure, still fails the build naming the host and why.
import { expect, test } from "bun:test";
import { ensureAgent } from "../../src/hook/agent-binary.ts";
import type { SshPool } from "../../src/remote/ssh.ts";

type Answer = { code: number | null; signal?: string; stdout: string; stderr: string };
const login = { text: "login.example", host: "login.example" };
const agent = { bin: "/state/nsh-agent-abc", sha256: "abc", size: 3, chunks: async function* () {} };

function poolAnswering(...answers: Answer[]): { pool: SshPool; asked: () => number } {
  let n = 0;
  const pool = { runCommand: async () => answers[Math.min(n++, answers.length - 1)]! } as unknown as SshPool;
  return { pool, asked: () => n };
}

test("a lost exit status is asked again: the agent found present", async () => {
  const { pool, asked } = poolAnswering({ code: null, stdout: "", stderr: "" }, { code: 0, stdout: "present\n", stderr: "" });
  expect(await ensureAgent(pool, login, agent, "/state/jobs/j1")).toEqual({ path: agent.bin, wasMissing: false, uploaded: false });
  expect(asked()).toBe(2);
});

test("lost twice: the build fails naming the host", async () => {
  const { pool } = poolAnswering({ code: null, stdout: "", stderr: "" });
  await expect(ensureAgent(pool, login, agent, "/state/jobs/j1")).rejects.toThrow("cannot prepare /state/jobs/j1 on login.example");
});

test("a real failure or a signal is not asked again", async () => {
  const failed = poolAnswering({ code: 1, stdout: "", stderr: "mkdir: Permission denied\n" });
  await expect(ensureAgent(failed.pool, login, agent, "/j")).rejects.toThrow("mkdir: Permission denied");
  expect(failed.asked()).toBe(1);
  const killed = poolAnswering({ code: null, signal: "SIGKILL", stdout: "", stderr: "" });
  await expect(ensureAgent(killed.pool, login, agent, "/j")).rejects.toThrow("killed by SIGKILL");
  expect(killed.asked()).toBe(1);
});
