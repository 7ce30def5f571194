// Copying closures between two real Nix 2.8 stores over the serve protocol (local sessions, no
// ssh): everything arrives valid with the same hashes, what the destination has is not sent again,
// and the cache only picks the question (the destination always answers).
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { ServeClient } from "../../src/nix/serve-client.ts";
import { copyClosure, type ValidityCache } from "../../src/remote/copy.ts";
import { spawnDuplex } from "../../src/remote/local-process.ts";
import { nullSink } from "../../src/util/progress.ts";
import { startNixLab, type NixLab } from "../lab/nix.ts";

let lab: NixLab;
let dest: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "copy" });
  dest = `local?root=${path.join(lab.root, "dest")}`;
});
afterAll(async () => {
  await lab?.cleanup();
});

const session = (store?: string) => ServeClient.open(spawnDuplex(["nix-store", "--serve", "--write", ...(store ? ["--store", store] : [])], { env: lab.env, describe: store ?? "local" }), lab.storeDir);

class MemoryCache implements ValidityCache {
  readonly m = new Map<string, Set<string>>();
  async knownValid(h: string, ps: readonly string[]) {
    return new Set(ps.filter((p) => this.m.get(h)?.has(p)));
  }
  async recordValid(h: string, ps: readonly string[]) {
    this.m.set(h, new Set([...(this.m.get(h) ?? []), ...ps]));
  }
  async forget(h: string, ps: readonly string[]) {
    for (const p of ps) this.m.get(h)?.delete(p);
  }
}

test("a closure of 30 paths and a 20 MiB one arrives whole; nothing is sent twice", async () => {
  const build = await lab.run(["nix-build", lab.expr("many"), "--argstr", "salt", `c${Date.now()}`, "--arg", "n", "30", "--arg", "bigMiB", "20", "--no-out-link"]);
  expect(build.code).toBe(0);
  const top = build.stdout.trim();
  const from = await session();
  const to = await session(dest);
  const cache = new MemoryCache();
  const first = await copyClosure(from, { kind: "serve", client: to, cacheKey: "dest" }, [top], { progress: nullSink, cache });
  expect(first.sent.length).toBe(32);
  expect(first.bytes).toBeGreaterThan(20 << 20);
  const verify = await lab.run(["nix-store", "--store", dest, "--verify", "--check-contents"]);
  expect(verify.stderr).not.toContain("error");
  const srcHash = (await lab.run(["nix-store", "-q", "--hash", top])).stdout;
  expect((await lab.run(["nix-store", "--store", dest, "-q", "--hash", top])).stdout).toBe(srcHash);
  // Again: the cache expects the root there, the destination confirms it, nothing is sent.
  const second = await copyClosure(from, { kind: "serve", client: to, cacheKey: "dest" }, [top], { progress: nullSink, cache });
  expect(second.sent).toEqual([]);
  expect(second.present.length).toBe(32);
  await from.close();
  await to.close();
});

test("a path the source does not have is an error naming it", async () => {
  const from = await session();
  const to = await session(dest);
  const bogus = `${lab.storeDir}/00000000000000000000000000000000-nothing`;
  await expect(copyClosure(from, { kind: "serve", client: to }, [bogus], { progress: nullSink })).rejects.toThrow(/nothing/);
  await from.close();
  await to.close();
});
