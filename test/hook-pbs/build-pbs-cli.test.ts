// Expected: with job-scheduler = pbs-cli (qsub/qstat/qdel as pbs-cli-user) the hook builds on the
// real OpenPBS: a derivation chain builds as PBS jobs run by the PBS user, on the node PBS names
// (reached by ssh as that user); pbsResources reach the job's Resource_List; a failing build fails
// nix-build with the builder's message and leaves no job; refused pbsResources fail the build with
// a message naming the key, and nothing is submitted.
import { buildScenarios } from "./scenarios.ts";

buildScenarios("pbs-cli");
