// Expected: the built binary reads nothing from the directory it is started in. A bunfig.toml there
// (`preload` = code Bun would run) and a .env there (variables Bun would add to the environment) change
// nothing: `nsh` and `nix-sigstop` run no preload, nix-sigstop runs the nix on PATH, not the .env's
// NIX_SIGSTOP_NIX, and nsh reads the nsh.conf its real environment names, not the .env's NSH_CONF.
// (A `bun build --compile` executable loads both by default; build.ts turns that off.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DIST } from "./sigstop/helpers.ts";

let dir: string;
let marker: string;
let fakeNixDir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-autoload-"));
  const repo = path.join(dir, "cloned-repo");
  fs.mkdirSync(repo);
  marker = path.join(dir, "preload-ran");
  fs.writeFileSync(path.join(repo, "evil.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
  fs.writeFileSync(path.join(repo, "bunfig.toml"), `preload = ["./evil.ts"]\n`);
  fs.writeFileSync(path.join(repo, "evil.conf"), "slurm-state-dir = /evil\n");
  fs.writeFileSync(path.join(repo, ".env"), `NIX_SIGSTOP_NIX=/bin/echo\nNSH_CONF=${path.join(repo, "evil.conf")}\n`);
  fakeNixDir = path.join(dir, "bin");
  fs.mkdirSync(fakeNixDir);
  fs.writeFileSync(path.join(fakeNixDir, "nix"), "#!/bin/sh\necho the-nix-on-PATH\n", { mode: 0o755 });
  // No NSH_CONF, NIX_SIGSTOP_*, …: the .env must not fill them in (Bun's .env never overrides a set variable).
  env = {
    PATH: `${fakeNixDir}:/usr/bin:/bin`,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, "config"),
    NIX_CONF_DIR: path.join(dir, "etc-nix"),
    TMPDIR: dir,
  };
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const cwd = () => path.join(dir, "cloned-repo");

async function run(argv: string[], firstLineOnly = false) {
  fs.rmSync(marker, { force: true }); // each test sees only its own run's preload
  const p = Bun.spawn(argv, { cwd: cwd(), env, stdio: ["ignore", "pipe", "pipe"] });
  if (firstLineOnly) {
    // nsh doctor goes on to contact a cluster; its first line (the nsh.conf it read) is all we need.
    const reader = p.stdout.getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    p.kill("SIGKILL");
    await p.exited;
    return { stdout: out, stderr: "", code: 0 };
  }
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

test("nsh --version runs no bunfig.toml preload from the working directory", async () => {
  const r = await run([path.join(DIST, "nsh"), "--version"]);
  expect(r.code).toBe(0);
  expect(fs.existsSync(marker)).toBe(false);
});

test("nix-sigstop runs the nix on PATH, not the .env's NIX_SIGSTOP_NIX, and no preload", async () => {
  const r = await run([path.join(DIST, "nix-sigstop"), "--quiet", "eval", "--expr", "1"]);
  expect(r.stdout).toContain("the-nix-on-PATH");
  expect(r.stdout).not.toContain("--expr"); // what /bin/echo would have printed
  expect(fs.existsSync(marker)).toBe(false);
});

test("nsh reads the nsh.conf its environment names, not the .env's NSH_CONF", async () => {
  const r = await run([path.join(DIST, "nsh"), "doctor"], true);
  expect(r.stdout).toContain("nsh.conf");
  expect(r.stdout).not.toContain("evil.conf");
  expect(fs.existsSync(marker)).toBe(false);
});
