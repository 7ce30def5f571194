// Expected: with job-scheduler = pbs, each way a build can fail outside the builder fails it clearly
// (an nsh error naming what is wrong, no stack trace, bounded time) and leaves no PBS job: a job past
// its walltime (named), the PBS server unreachable (named), a job user PBS refuses or the
// system does not know, the job's node unreachable by ssh (named; the job is cancelled), and
// pbsResources that is not a JSON object of strings (the attribute named). See failure-scenarios.ts.
import { failureScenarios } from "./failure-scenarios.ts";

failureScenarios("pbs");
