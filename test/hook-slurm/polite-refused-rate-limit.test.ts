// Expected: when slurmctld answers submits with its rate-limit refusal ("Rate limit exceeded,
// please retry momentarily", SLURMCTLD_COMMUNICATIONS_BACKOFF 1804: Slurm ≥ 23.02 with
// SlurmctldParameters=rl_enable), nsh waits and submits again instead of failing the build: both
// builds succeed after the refusals, and the user is told the submit is retried. Slurm 22.05 in the
// lab has no rate limit, so a proxy in front of slurmrestd injects the refusal: slurmrestd's own
// reply to a refused submit, with the rate limit's text and number.
import { refusedSubmitsScenario } from "./polite-refused.ts";

refusedSubmitsScenario(
  "polite-rate-limited",
  "submits refused by the rate limit: nsh waits, submits again, both builds succeed",
  { text: "Rate limit exceeded, please retry momentarily", errno: 1804 },
  /refused the submit for now .*Rate limit exceeded.*trying again/,
);
