// Expected: when slurmctld refuses submits because it holds too many jobs ("Unable to create job
// record, try again", ESLURM_ERROR_ON_DESC_TO_RECORD_COPY 2007: the cluster's MaxJobCount), nsh
// waits and submits again instead of failing the build: both builds succeed after the refusals,
// and the user is told the submit is retried. The lab has no slurmdbd (so no MaxSubmitJobs via
// sacctmgr), and MaxJobCount counts finished jobs until slurmctld purges them (every minute at
// best), so a proxy in front of slurmrestd injects the refusal: slurmrestd's own reply to a
// refused submit, with this error's text and number.
import { refusedSubmitsScenario } from "./polite-refused.ts";

refusedSubmitsScenario(
  "polite-too-many-jobs",
  "submits refused for too many jobs: nsh waits, submits again, both builds succeed",
  { text: "Unable to create job record, try again", errno: 2007 },
  /refused the submit for now .*Unable to create job record.*trying again/,
);
