// Helper for pbs.test.ts: a test process that starts a PBS lab, says where it
// is on stdout (one JSON line) and then waits to be SIGKILLed, like a test
// runner killed mid-run. Its lab must then be torn down by the watchdog.
import { startPbsLab } from "../lab/pbs.ts";
import { stateFileOf } from "../lab/pbs-netns.ts";

const lab = await startPbsLab();
console.log(JSON.stringify({ id: lab.id, root: lab.root, netns: lab.netns, stateFile: stateFileOf(lab.id), pids: lab.pids() }));
setInterval(() => undefined, 60_000);
