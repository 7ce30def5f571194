// Expected: the hook's start-notice port hears the job's agent (its environment names the port
// and token) and nothing else: a connection with another token, with garbage or with an endless
// line is closed and does not count. An agent whose hook is gone or unreachable goes on at once.
// A start-notice-host that is no host name is warned about, and then nothing listens.
import { afterEach, expect, test } from "bun:test";
import net from "node:net";
import { parseNoticeTarget, sendStartNotice, START_NOTICE_ENV } from "../../src/agent/start-notice.ts";
import { badNoticeHost, listenForStart, type StartListener } from "../../src/hook/build/start-listener.ts";

let open: StartListener | undefined;
const fail = (m: string) => {
  throw new Error(`unexpected warning: ${m}`);
};
afterEach(() => open?.close());

const heard = (l: StartListener, ms: number) =>
  Promise.race([l.arrived.then(() => true), Bun.sleep(ms).then(() => false)]);

/** Sends raw bytes to the listener; resolves when the listener closed the connection. */
function raw(port: number, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1", () => c.write(bytes));
    c.on("error", () => resolve());
    c.on("close", () => resolve());
  });
}

test("the agent's notice reaches the hook", async () => {
  open = listenForStart("127.0.0.1", fail)!;
  expect(open).toBeDefined();
  sendStartNotice({ [START_NOTICE_ENV]: open.target });
  expect(await heard(open, 5000)).toBe(true);
});

test("another token, garbage and an endless line do not count", async () => {
  open = listenForStart("127.0.0.1", fail)!;
  const { port, token } = parseNoticeTarget(open.target)!;
  await raw(port, `nsh-started ${"0".repeat(token.length)}\n`);
  await raw(port, "GET / HTTP/1.0\r\n\r\n");
  await raw(port, "x".repeat(10_000));
  sendStartNotice({ [START_NOTICE_ENV]: open.target.replace(/^[0-9a-f]+/, "f".repeat(32)) });
  expect(await heard(open, 1000)).toBe(false);
  sendStartNotice({ [START_NOTICE_ENV]: open.target });
  expect(await heard(open, 5000)).toBe(true);
});

test("no hook listening, or no notice asked for: the agent goes on at once", async () => {
  open = listenForStart("127.0.0.1", fail)!;
  const target = open.target;
  open.close();
  const t0 = performance.now();
  sendStartNotice({ [START_NOTICE_ENV]: target });
  sendStartNotice({ [START_NOTICE_ENV]: target.replace(/@.*:/, "@no-such-host.invalid:") });
  sendStartNotice({});
  expect(performance.now() - t0).toBeLessThan(100);
  await Bun.sleep(300); // a refused or unresolved connection throws nowhere
});

test("a start-notice-host that is no host name is said, and the hook polls instead", () => {
  const said: string[] = [];
  expect(listenForStart("login node;rm -rf", (m) => said.push(m))).toBeUndefined();
  expect(said.join("")).toContain("start-notice-host 'login node;rm -rf'");
  expect(badNoticeHost("login1.cluster.example")).toBeUndefined();
  expect(badNoticeHost("fe80::1%eth0")).toBeUndefined();
});
