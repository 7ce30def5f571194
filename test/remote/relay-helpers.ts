// Shared by the ssh relay's lab tests: a unix socket "on the node" (the lab's sshd is on this machine)
// that reads everything until the client's half-close and only then answers: the sha256 and length
// of what it got, then `replyBytes` bytes (a pattern), then EOF. And the client processes.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

export const NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");
const CLIENT = path.join(import.meta.dir, "fixtures", "relay-client.ts");

export const pattern = (n: number) => Buffer.from(new Uint8Array(n).map((_, i) => (i * 13 + 5) & 0xff));

/** The expected answer to `sent` bytes: "<sha256> <length>\n" then the pattern. */
export function expectedReply(sent: Uint8Array, replyBytes: number): { sha: string; bytes: number } {
  const head = Buffer.from(`${createHash("sha256").update(sent).digest("hex")} ${sent.byteLength}\n`);
  const all = Buffer.concat([head, pattern(replyBytes)]);
  return { sha: createHash("sha256").update(all).digest("hex"), bytes: all.byteLength };
}

export function answerAfterEof(socketPath: string, replyBytes: number): net.Server {
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    const hash = createHash("sha256");
    let n = 0;
    c.on("data", (b: Buffer) => {
      hash.update(b);
      n += b.byteLength;
    });
    c.on("end", () => {
      c.write(`${hash.digest("hex")} ${n}\n`);
      c.end(pattern(replyBytes));
    });
    c.on("error", () => {});
  });
  server.listen(socketPath);
  return server;
}

export interface ClientResult {
  ok: boolean;
  connectMs?: number;
  viaRelay?: boolean;
  sentSha?: string;
  backBytes?: number;
  backSha?: string;
  backText?: string;
  error?: string;
  name?: string;
  warnings: string[];
}

/** One client process (its own pool, like a hook). */
export async function runClient(
  configFile: string, stateDir: string, remoteSocket: string,
  opts: { send?: number; idle?: number; env?: Record<string, string> } = {},
): Promise<ClientResult> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>), RELAY_NSH: NSH, RELAY_IDLE: String(opts.idle ?? 60),
    RELAY_SEND_BYTES: String(opts.send ?? 0), ...opts.env,
  };
  delete env.SSH_AUTH_SOCK;
  const argv = [process.execPath, CLIENT, configFile, stateDir, remoteSocket];
  const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  const line = out.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    throw new Error(`relay client printed no result: ${out}\n${err}`);
  }
}

/** PIDs of `nsh __ssh-relay` processes serving sockets under `dir`, from /proc. */
export function relayPids(dir: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv.includes("__ssh-relay") && argv.some((a) => a.startsWith(dir))) out.push(Number(name));
    } catch {} // exited meanwhile
  }
  return out;
}

/** sshd's "Accepted" lines: one per authenticated connection. */
export const acceptedConnections = (logFile: string) =>
  fs.readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("Accepted ")).length;

export async function waitFor(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  for (const until = Date.now() + ms; !cond();) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

/** A private sshd, a scratch directory and the answering socket in it, and their cleanup. */
export interface RelayLab {
  configFile: string;
  logFile: string;
  dir: string;
  nodeSocket: string;
  stop(): Promise<void>;
}

export async function startRelayLab(replyBytes = 1024): Promise<RelayLab> {
  const { startSshd } = await import("../lab/sshd.ts");
  const sshd = await startSshd();
  const dir = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "nsh-relay-"));
  const nodeSocket = path.join(dir, "node.sock");
  const server = answerAfterEof(nodeSocket, replyBytes);
  return {
    configFile: sshd.configFile, logFile: sshd.logFile, dir, nodeSocket,
    async stop() {
      server.close();
      for (const pid of relayPids(dir)) process.kill(pid, "SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
      await sshd.stop();
    },
  };
}
