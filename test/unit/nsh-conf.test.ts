import { expect, test } from "bun:test";
import { parseNixConf } from "../../src/config/nixconf.ts";
import { defaultNshConfig, nshConfFiles, parseNshConf, pinnedKeys } from "../../src/config/nsh-conf.ts";

const conf = (text: string) => parseNshConf(parseNixConf(text, "nsh.conf", () => undefined).settings);

test("defaults are the seed's", () => {
  const d = defaultNshConfig();
  expect([d["job-scheduler"], d.system, d["system-features"], d["mandatory-system-features"], d["store-dir"], d["remote-store"], d["collect-garbage"], d["slurm-api-host"], d["slurm-api-port"], d["pbs-port"]])
    .toEqual(["slurm", "x86_64-linux", ["nsh"], [], "/nix/store", "auto", false, "localhost", 6820, 15001]);
});

test("typed values and where they came from", () => {
  const r = conf("job-scheduler = pbs\ncollect-garbage = true\nslurm-api-port = 7000\nextra-system-features = big\ncopy-budget = 2G\nslurm-extra-submission-params = {\"partition\": \"gpu\"}\n");
  expect(r.errors).toEqual([]);
  expect(r.config["job-scheduler"]).toBe("pbs");
  expect(r.config["collect-garbage"]).toBe(true);
  expect(r.config["slurm-api-port"]).toBe(7000);
  expect(r.config["copy-budget"]).toBe(2 * 2 ** 30);
  expect(r.config["openssh-min-size"]).toBe(64 * 2 ** 20); // the default
  expect(r.config["slurm-extra-submission-params"]).toEqual({ partition: "gpu" });
  expect(r.origins.get("slurm-api-port")).toBe("nsh.conf:3");
});

test.each([
  ["job-scheduler = lsf", "nsh.conf:1: 'job-scheduler' expects one of slurm, slurm-native, pbs"],
  ["collect-garbage = maybe", "nsh.conf:1: 'collect-garbage' expects a Boolean"],
  ["slurm-api-port = http", "nsh.conf:1: 'slurm-api-port' expects an integer"],
  ["slurm-extra-submission-params = [1]", "nsh.conf:1: 'slurm-extra-submission-params' expects a JSON object, got '[1]'"],
  ["copy-budget = lots", "nsh.conf:1: 'copy-budget' expects a size"],
])("bad value %p names file and line", (text, msg) => expect(conf(text).errors[0]?.message).toStartWith(msg));

test("unknown keys are warned about, not fatal", () => {
  const r = conf("slurm-api-hots = x\n");
  expect(r.errors).toEqual([]);
  expect(r.warnings).toEqual(["nsh.conf:1: unknown setting 'slurm-api-hots' (ignored)"]);
});

test("file lookup", () => {
  expect(nshConfFiles({ NIX_CONF_DIR: "/etc/nix", HOME: "/home/u" })).toEqual(["/etc/nix/nsh.conf", "/home/u/.config/nix/nsh.conf"]);
  expect(nshConfFiles({ NSH_CONF: "/x/nsh.conf" })).toEqual(["/x/nsh.conf"]);
});

test("pinned keys", () => {
  expect(pinnedKeys(["n1,n2", "ssh-ed25519", "AAAA"]).pins.get("n2")).toEqual(["ssh-ed25519 AAAA"]);
  expect(pinnedKeys(["n1", "ssh-ed25519"]).error).toContain("triples");
});
