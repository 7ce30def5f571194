// Helper for pbs.test.ts: a test process that starts a PBS lab, says where it
// is on stdout (one JSON line) and then waits to be SIGKILLed, like a test
// runner killed mid-run. Its lab must then be torn down by the watchdog.
import { startPbsLab } from "../lab/pbs.ts";
import { stateFileOf } from "../lab/pbs-netns.ts";

const lab = await startPbsLab();
const info = { id: lab.id, root: lab.root, netns: lab.netns, stateFile: stateFileOf(lab.id), pids: lab.pids() };
console.log(JSON.stringify(info));
setInterval(() => undefined, 60_000);
