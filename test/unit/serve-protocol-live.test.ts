// The serve-protocol codec against the real `nix-store --serve --write` installed here (Nix 2.8),
// with two throw-away stores sharing one logical store dir: "local" is a chroot store
// (`--store <root>`, no builds needed there) and "remote" is a plain store that can build
// without a sandbox. Skipped where nix-store is absent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDerivation } from "../../src/nix/derivation.ts";
import { exportEnd, exportHeader, exportTrailer } from "../../src/nix/export.ts";
import { formatNarHash } from "../../src/nix/hash.ts";
import { readNar } from "../../src/nix/nar.ts";
import {
  DEFAULT_BUILD_OPTIONS,
  basicDerivation,
  encodeAddToStoreNar,
  encodeBuildDerivation,
  encodeBuildPaths,
  encodeDumpStorePath,
  encodeHello,
  encodeImportPaths,
  encodeQueryClosure,
  encodeQueryPathInfos,
  encodeQueryValidPaths,
  negotiatedMinor,
  pathWithOutputs,
  readAck,
  readBuildPathsResult,
  readBuildResult,
  readHello,
  readPathInfos,
  readPathSet,
} from "../../src/nix/serve-protocol.ts";
import { WireReader } from "../../src/nix/wire.ts";

const haveNix = Bun.which("nix-store") !== null;

class Serve {
  readonly r: WireReader;
  private readonly stderr: Promise<string>;
  minor = 0;
  constructor(private readonly proc: Bun.Subprocess<"pipe", "pipe", "pipe">) {
    this.r = new WireReader(proc.stdout.getReader());
    this.stderr = new Response(proc.stderr).text();
  }
  static async open(env: Record<string, string>, store?: string): Promise<Serve> {
    const args = ["nix-store", "--serve", "--write", ...(store ? ["--store", store] : [])];
    const s = new Serve(Bun.spawn(args, { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" }));
    await s.send(encodeHello());
    s.minor = negotiatedMinor(await readHello(s.r));
    return s;
  }
  async send(bytes: Uint8Array): Promise<void> {
    this.proc.stdin.write(bytes);
    await this.proc.stdin.flush();
  }
  async close(): Promise<{ code: number; stderr: string }> {
    await this.proc.stdin.end();
    const code = await this.proc.exited;
    return { code, stderr: await this.stderr };
  }
}

describe.skipIf(!haveNix)("nix-store --serve --write", () => {
  let dir = "";
  let env: Record<string, string> = {};
  let localRoot = "";
  let drvPath = "";
  let failDrvPath = "";
  let slowDrvPath = "";
  let src = "";
  let out = "";
  let local: Serve;
  let remote: Serve;

  const nixStore = (args: string[], store?: string) => {
    const p = Bun.spawnSync(["nix-store", ...(store ? ["--store", store] : []), ...args], { env, stderr: "pipe" });
    if (p.exitCode !== 0) throw new Error(`nix-store ${args.join(" ")}: ${p.stderr.toString()}`);
    return p.stdout.toString().trim();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsh-serve-"));
    mkdirSync(join(dir, "conf"));
    writeFileSync(join(dir, "conf/nix.conf"), "build-users-group =\nsandbox = false\nsubstituters =\n");
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, NIX_REMOTE: "local", NIX_STORE_DIR: join(dir, "s"), NIX_STATE_DIR: join(dir, "var"), NIX_LOG_DIR: join(dir, "log"), NIX_CONF_DIR: join(dir, "conf") };
    localRoot = join(dir, "local");
    writeFileSync(join(dir, "src.txt"), "data\n");
    const mk = (name: string, script: string) =>
      `builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "${script}" ]; src = ./src.txt; }`;
    writeFileSync(join(dir, "ok.nix"), mk("ok", "read x < $src; echo $x hello > $out"));
    writeFileSync(join(dir, "fail.nix"), mk("fail", "echo oops >&2; exit 3"));
    const inst = (f: string) => Bun.spawnSync(["nix-instantiate", "--store", localRoot, join(dir, f)], { env, stderr: "pipe" }).stdout.toString().trim();
    drvPath = inst("ok.nix");
    failDrvPath = inst("fail.nix");
    writeFileSync(join(dir, "slow.nix"), mk("slow", "exec /bin/sleep 60"));
    slowDrvPath = inst("slow.nix");
    src = parseDerivation(readFileSync(join(localRoot, "nix/store", drvPath.split("/").pop()!), "utf8")).inputSrcs[0]!;
    local = await Serve.open(env, localRoot);
    remote = await Serve.open(env);
  });
  afterAll(async () => {
    await local?.close();
    await remote?.close();
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  test("handshake: Nix 2.8 answers 2.7", () => {
    expect(local.minor).toBe(7);
    expect(remote.minor).toBe(7);
  });

  test("QueryValidPaths", async () => {
    const bogus = `${env.NIX_STORE_DIR}/00000000000000000000000000000000-nope`;
    await local.send(encodeQueryValidPaths(true, false, [drvPath, bogus, src]));
    expect((await readPathSet(local.r)).sort()).toEqual([drvPath, src].sort());
    await remote.send(encodeQueryValidPaths(false, false, [drvPath, src]));
    expect(await readPathSet(remote.r)).toEqual([]);
  });

  test("QueryPathInfos matches nix-store --query", async () => {
    await local.send(encodeQueryPathInfos([drvPath, src, `${env.NIX_STORE_DIR}/00000000000000000000000000000000-nope`]));
    const infos = await readPathInfos(local.r, local.minor);
    expect([...infos.keys()].sort()).toEqual([drvPath, src].sort());
    for (const [path, info] of infos) {
      expect(info.narHash).toBe(nixStore(["-q", "--hash", path], localRoot));
      expect(String(info.narSize)).toBe(nixStore(["-q", "--size", path], localRoot));
      expect(info.deriver).toBeUndefined();
      expect(info.sigs).toEqual([]);
      // Nix 2.8 reports the NAR size as download size ("lie a little").
      expect(info.downloadSize).toBe(info.narSize);
    }
    expect(infos.get(drvPath)?.references).toEqual([src]);
    // A .drv is text-addressed, a source added by the evaluator is file-addressed.
    expect(infos.get(drvPath)?.ca).toMatch(/^text:sha256:[0-9a-z]{52}$/);
    expect(infos.get(src)?.ca).toMatch(/^fixed:r:sha256:[0-9a-z]{52}$/);
  });

  test("QueryClosure", async () => {
    await local.send(encodeQueryClosure(false, [drvPath]));
    expect((await readPathSet(local.r)).sort()).toEqual([drvPath, src].sort());
  });

  test("DumpStorePath through readNar, then the connection is still in sync", async () => {
    await local.send(encodeQueryPathInfos([src]));
    const info = (await readPathInfos(local.r, local.minor)).get(src)!;
    await local.send(encodeDumpStorePath(src));
    const res = await readNar(local.r, () => {});
    expect(formatNarHash(res.narHash)).toBe(info.narHash);
    expect(res.narSize).toBe(info.narSize);
    await local.send(encodeQueryValidPaths(false, false, [src]));
    expect(await readPathSet(local.r)).toEqual([src]);
  });

  test("AddToStoreNar copies the closure, streaming NARs from one server to the other", async () => {
    for (const path of [src, drvPath, failDrvPath]) {
      await local.send(encodeQueryPathInfos([path]));
      const info = (await readPathInfos(local.r, local.minor)).get(path)!;
      await remote.send(encodeAddToStoreNar({ path, narHash: info.narHash, references: info.references, narSize: info.narSize, ...(info.ca ? { ca: info.ca } : {}) }));
      await local.send(encodeDumpStorePath(path));
      const res = await readNar(local.r, (chunk) => remote.send(chunk));
      expect(formatNarHash(res.narHash)).toBe(info.narHash);
      await readAck(remote.r, "AddToStoreNar");
    }
    nixStore(["--check-validity", src, drvPath, failDrvPath]);
    expect(nixStore(["-q", "--hash", drvPath])).toBe(nixStore(["-q", "--hash", drvPath], localRoot));
    expect(nixStore(["-q", "--references", drvPath])).toBe(src);
  });

  test("BuildDerivation of a trivial derivation", async () => {
    const drv = parseDerivation(readFileSync(join(localRoot, "nix/store", drvPath.split("/").pop()!), "utf8"));
    out = drv.outputs.get("out")!.path;
    const before = Math.floor(Date.now() / 1000);
    await remote.send(encodeBuildDerivation(drvPath, basicDerivation(drv), DEFAULT_BUILD_OPTIONS, remote.minor));
    const res = await readBuildResult(remote.r, remote.minor, env.NIX_STORE_DIR);
    expect(res).toMatchObject({ status: 0, statusName: "Built", errorMsg: "", timesBuilt: 1, isNonDeterministic: false });
    expect(res.startTime).toBeGreaterThanOrEqual(before);
    expect(res.stopTime).toBeGreaterThanOrEqual(res.startTime);
    expect([...res.builtOutputs]).toEqual([["out", { outPath: out, signatures: [] }]]);
    expect(readFileSync(out, "utf8")).toBe("data hello\n");
    await remote.send(encodeQueryPathInfos([out]));
    expect((await readPathInfos(remote.r, remote.minor)).get(out)?.deriver).toBe(drvPath);
  });

  test("BuildDerivation of a failing derivation", async () => {
    const drv = parseDerivation(readFileSync(join(localRoot, "nix/store", failDrvPath.split("/").pop()!), "utf8"));
    await remote.send(encodeBuildDerivation(failDrvPath, basicDerivation(drv), { ...DEFAULT_BUILD_OPTIONS, maxLogSize: 1 << 20 }, remote.minor));
    const res = await readBuildResult(remote.r, remote.minor, env.NIX_STORE_DIR);
    expect(res.statusName).toBe("PermanentFailure");
    expect(res.errorMsg).toContain("failed with exit code 3");
    expect(res.builtOutputs.size).toBe(0);
  });

  test("BuildPaths: success and failure", async () => {
    await remote.send(encodeBuildPaths([pathWithOutputs(drvPath, ["out"])], DEFAULT_BUILD_OPTIONS, remote.minor));
    expect(await readBuildPathsResult(remote.r)).toEqual({ ok: true });
    await remote.send(encodeBuildPaths([pathWithOutputs(failDrvPath, ["out"])], DEFAULT_BUILD_OPTIONS, remote.minor));
    const res = await readBuildPathsResult(remote.r);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.status).toBe(100);
      expect(res.errorMsg).toContain("failed");
    }
  });

  test("ImportPaths brings the output home as an export stream", async () => {
    await remote.send(encodeQueryPathInfos([out]));
    const info = (await readPathInfos(remote.r, remote.minor)).get(out)!;
    await local.send(encodeImportPaths());
    await local.send(exportHeader());
    await remote.send(encodeDumpStorePath(out));
    await readNar(remote.r, (chunk) => local.send(chunk));
    await local.send(exportTrailer({ path: out, references: info.references, ...(info.deriver ? { deriver: info.deriver } : {}) }));
    await local.send(exportEnd());
    await readAck(local.r, "ImportPaths");
    nixStore(["--check-validity", out], localRoot);
    expect(nixStore(["-q", "--hash", out], localRoot)).toBe(info.narHash);
    expect(nixStore(["-q", "--deriver", out], localRoot)).toBe(drvPath);
  });

  test("closing stdin during BuildDerivation interrupts the build (no reply)", async () => {
    const drv = parseDerivation(readFileSync(join(localRoot, "nix/store", slowDrvPath.split("/").pop()!), "utf8"));
    const s = await Serve.open(env);
    await s.send(encodeBuildDerivation(slowDrvPath, basicDerivation(drv), DEFAULT_BUILD_OPTIONS, s.minor));
    await Bun.sleep(300);
    const started = Date.now();
    const { code, stderr } = await s.close();
    expect(code).toBe(1);
    expect(stderr).toContain("interrupted by the user");
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await s.r.atEnd()).toBe(true);
  });

  test("the servers exit cleanly at EOF", async () => {
    const l = await local.close();
    expect(l.code).toBe(0);
    const r = await remote.close();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("oops");
  });
});
