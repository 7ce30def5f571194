// Expected: a derivation's scheduler parameters pass only when every key is on the allow-list
// (by default resource and placement fields of the scheduler's attribute); keys that would let a
// derivation author run code or touch files outside the sandbox (environment, script, output
// files, working directory, container, …) are refused, whatever their case; a site narrows the
// list, widens it (nsh.conf `extra-derivation-params-allow`) or opens it (`*`). A refusal names the
// derivation, the attribute and the key, and says how to allow it.
import { describe, expect, test } from "bun:test";
import { parseNshConf } from "../../src/config/nsh-conf.ts";
import { parseNixConf } from "../../src/config/nixconf.ts";
import { DEFAULT_ALLOWED_PARAMS, allowList, refusalMessage, refusedKeys } from "../../src/hook/derivation-params.ts";
import { DerivationAttrError, derivationParams, jobSpec } from "../../src/hook/job-plan.ts";
import { parseDerivation } from "../../src/nix/derivation.ts";

const slurm = (words?: string[]) => allowList("extraSlurmParams", words);

describe("extraSlurmParams, built-in list: allowed", () => {
  test.each([
    ["cpus and tasks", { cpus_per_task: 4, minimum_cpus: 4, tasks: 1, tasks_per_node: 1, threads_per_core: 1 }],
    ["memory, plain and v0.0.39+ shape", { memory_per_node: { set: true, number: 1024 }, memory_per_cpu: 512 }],
    ["time", { time_limit: 30, time_minimum: 10 }],
    ["placement", { partition: "gpu", qos: "long", account: "proj", reservation: "r1", constraints: "avx512", nodes: "1" }],
    ["node counts and exclusivity", { minimum_nodes: 1, maximum_nodes: 2, exclusive: "user", oversubscribe: false }],
    ["GPUs, gres, TRES, licenses", { gres: "gpu:1", tres_per_node: "gres/gpu:1", tres_per_task: "cpu=2", tres_per_job: "gres/gpu:2", licenses: "matlab:1" }],
    ["a comment, holding the job", { comment: "project X", hold: true }],
    ["nothing at all", {}],
  ])("%s", (_name, params) => expect(refusedKeys(params, slurm())).toEqual([]));
});

describe("extraSlurmParams, built-in list: refused", () => {
  test.each([
    ["the job's environment", { environment: { LD_PRELOAD: "/tmp/x.so" } }, ["environment"]],
    ["the script", { script: "#!/bin/sh\nrm -rf ~" }, ["script"]],
    ["output, error and input files", { standard_output: "/home/u/.bashrc", standard_error: "x", standard_input: "y" }, ["standard_output", "standard_error", "standard_input"]],
    ["the working directory", { current_working_directory: "/" }, ["current_working_directory"]],
    ["a container, argv, the login environment", { container: "/b", argv: ["x"], get_user_environment: true }, ["container", "argv", "get_user_environment"]],
    ["SPANK environment, burst buffer, crontab, x11", { spank_environment: [], burst_buffer: "#DW", crontab: {}, x11: "batch" }, ["spank_environment", "burst_buffer", "crontab", "x11"]],
    ["another user, mail", { user_id: "0", mail_user: "a@b", mail_type: "ALL" }, ["user_id", "mail_user", "mail_type"]],
    ["a case Slurm might read the same", { Environment: {}, Script: "x" }, ["Environment", "Script"]],
    ["allowed keys stay, the rest is named", { cpus_per_task: 2, environment: {}, partition: "p", script: "s" }, ["environment", "script"]],
  ])("%s", (_name, params, refused) => expect(refusedKeys(params, slurm())).toEqual(refused));
});

describe("the site's derivation-params-allow", () => {
  test.each([
    ["narrowed to one key", ["cpus_per_task"], { cpus_per_task: 2, partition: "p" }, ["partition"]],
    ["widened: default plus requeue", ["default", "requeue"], { requeue: false, partition: "p" }, []],
    ["widened to environment", ["default", "environment"], { environment: { A: "b" } }, []],
    ["opened with *", ["*"], { environment: {}, script: "x", anything: 1 }, []],
    ["empty: nothing passes", [], { cpus_per_task: 1 }, ["cpus_per_task"]],
  ])("%s", (_name, words, params, refused) => expect(refusedKeys(params, slurm(words))).toEqual(refused));
});

describe("every scheduler's attribute has its own list", () => {
  test.each([
    ["slurmNativeConstraints", { cpus: 4, memPerNode: 8192, memPerCPU: 1024 }, []],
    ["slurmNativeConstraints", { cpus: 4, environment: "A=b", work_dir: "/" }, ["environment", "work_dir"]],
    ["pbsResources", { ncpus: "4", mem: "1gb", walltime: "01:00:00", select: "1:ncpus=4", place: "free" }, []],
    ["pbsResources", { ncpus: "4", Variable_List: "LD_PRELOAD=/x", Output_Path: "/home/u/.profile" }, ["Variable_List", "Output_Path"]],
    ["an attribute nsh has no list for", { cpus: 1 }, ["cpus"]],
  ])("%s %p", (attr, params, refused) => expect(refusedKeys(params, allowList(attr))).toEqual(refused));

  test("the lists do not overlap by accident with what runs code", () => {
    for (const keys of Object.values(DEFAULT_ALLOWED_PARAMS)) {
      for (const bad of ["environment", "script", "current_working_directory", "standard_output", "container", "argv"]) expect(keys).not.toContain(bad);
    }
  });
});

const drvText = (env: [string, string][]) =>
  `Derive([("out","/nix/store/ffffffffffffffffffffffffffffffff-x","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo"],[${env.map(([k, v]) => `(${JSON.stringify(k)},${JSON.stringify(v)})`).join(",")}])`;
const DRV = "/nix/store/ffffffffffffffffffffffffffffffff-evil.drv";

test("the refusal names the derivation, the attribute, the keys and the setting that allows them", () => {
  expect(refusalMessage(DRV, "extraSlurmParams", ["environment"])).toBe(
    `${DRV}: attribute extraSlurmParams sets the key 'environment', which a derivation may not set ` +
      "(only resource and placement fields pass; nothing was submitted); to allow it, add 'extra-derivation-params-allow = environment' to nsh.conf",
  );
  expect(refusalMessage(DRV, "pbsResources", ["a", "b"])).toContain("sets the keys 'a', 'b'");
});

test("a derivation's attribute is checked when it is read and when its job is planned", () => {
  const drv = parseDerivation(drvText([["extraSlurmParams", '{"cpus_per_task":2,"current_working_directory":"/"}']]));
  expect(() => derivationParams(drv, DRV, "extraSlurmParams")).toThrow(DerivationAttrError);
  expect(() => derivationParams(drv, DRV, "extraSlurmParams")).toThrow(`${DRV}: attribute extraSlurmParams sets the key 'current_working_directory'`);
  expect(derivationParams(drv, DRV, "extraSlurmParams", ["default", "current_working_directory"])).toEqual({ cpus_per_task: 2, current_working_directory: "/" });
  const plan = (paramsAllow?: string[]) =>
    jobSpec({
      ...{ drvPath: DRV, drv, stateDir: "/st", key: "k1", agentPath: "/st/bin/nsh-a", remoteStore: "auto", nixBinDir: "" },
      ...{ collectGarbage: false, buildTimeout: 0, paramsAttr: "extraSlurmParams", ...(paramsAllow ? { paramsAllow } : {}) },
    });
  expect(() => plan()).toThrow(/may not set/);
  expect(plan(["*"]).extra).toEqual({ cpus_per_task: 2, current_working_directory: "/" });
});

describe("derivation-params-allow in nsh.conf", () => {
  const conf = (text: string) => parseNshConf(parseNixConf(text, "nsh.conf", () => undefined).settings).config["derivation-params-allow"];
  test.each([
    ["unset: the built-in list", "", ["default"]],
    ["extra- widens the built-in list", "extra-derivation-params-allow = requeue nice", ["default", "requeue", "nice"]],
    ["a value replaces it", "derivation-params-allow = cpus_per_task time_limit", ["cpus_per_task", "time_limit"]],
    ["extra- after a value appends to it", "derivation-params-allow = cpus_per_task\nextra-derivation-params-allow = qos", ["cpus_per_task", "qos"]],
    ["empty: nothing", "derivation-params-allow =", []],
  ])("%s", (_name, text, words) => expect(conf(text)).toEqual(words));
});
