// Expected: with job-scheduler = pbs-cli (qsub/qstat/qdel as pbs-cli-user) the hook builds on the real OpenPBS: a
// derivation chain builds as PBS jobs run by the PBS user, on the node PBS names (reached by ssh as
// that user), its log in nix-build's output and in `nix log`, its jobs in `nsh jobs`; pbsResources
// reach the job's Resource_List; a failing build fails nix-build with the builder's message and leaves
// no job; `nsh doctor` says the setup is in place; `nsh cancel` ends a running build's job;
// collect-garbage empties the node store of the outputs; the node's nix-store is remote-nix-bin-dir's
// (one without it is named, no job left); refused pbsResources fail the build naming the key, and
// nothing is submitted.
import { buildScenarios } from "./scenarios.ts";

buildScenarios("pbs-cli");
