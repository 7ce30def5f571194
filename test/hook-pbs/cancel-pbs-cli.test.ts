// Expected: with job-scheduler = pbs-cli, interrupting nix-build (SIGINT, as Ctrl-C does) ends the build's
// PBS job, whether it is running (a 60 s builder) or queued (more cpus than the node has): within
// 30 s no job of the build is left queued or running, and `nsh jobs` records it as cancelled. Nix
// 2.8 SIGKILLs the hook's process group, so the cancel comes from nsh's detached reaper, which must
// reach the same PBS server (pbs.conf through PBS_CONF_FILE) and run as the same PBS user.
import { cancelScenarios } from "./scenarios.ts";

cancelScenarios("pbs-cli");
