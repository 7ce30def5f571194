// A hook's agent upload that stalls part-way (the test SIGKILLs this process then, as Nix kills a
// hook on Ctrl-C): ensureAgent places dist/nsh on the lab's login host, but its byte source sends
// the first `bytes` and then never more. Prints "stalled" once those bytes are written.
// argv: <ssh config> <login host> <bin path on the cluster> <sha256> <file> <job dir> <bytes>
import { ensureAgent } from "../../src/hook/agent-binary.ts";
import { parseDestination } from "../../src/remote/destination.ts";
import { SshPool } from "../../src/remote/ssh.ts";

const [sshConfig, login, bin, sha256, file, jobDir, bytes] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const pool = new SshPool({ configFile: sshConfig });
async function* stalling(): AsyncIterable<Uint8Array> {
  yield new Uint8Array(await Bun.file(file).slice(0, Number(bytes)).arrayBuffer());
  console.log("stalled");
  await new Promise(() => {});
}
await ensureAgent(pool, parseDestination(login), { bin, sha256, size: Bun.file(file).size, chunks: stalling }, jobDir);
