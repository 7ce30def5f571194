// slurmAuthRefusal: a credential slurmctld refused is said as such (the backend named, munge to
// check), whether the client was told in words or slurmctld just hung up; anything else is not.
import { expect, test } from "bun:test";
import { slurmAuthRefusal } from "../../src/schedulers/slurm-auth.ts";

test.each([
  ["sbatch: error: Batch job submission failed: Zero Bytes were transmitted or received", "hung up"],
  ["slurm_load_jobs error: Zero Bytes were transmitted or received", "hung up"],
  ["slurm_load_jobs error: Protocol authentication error", "refused"],
  ["Invalid authentication credential", "refused"],
  ["slurm_load_jobs error: Unable to contact slurm controller (connect failure)", null],
  ["sbatch: error: Batch job submission failed: Invalid partition name specified", null],
  ["", null],
])("%p: %p", (text, says) => {
  const m = slurmAuthRefusal("slurm-cli", text);
  if (says === null) return expect(m).toBeNull();
  expect(m).toStartWith("slurm-cli: authentication failed: ");
  expect(m).toContain(says);
  expect(m).toContain("munge.key");
});
