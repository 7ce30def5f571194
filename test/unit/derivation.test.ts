import { describe, expect, test } from "bun:test";
import {
  DerivationAttrError,
  DerivationParseError,
  hasKnownOutputPaths,
  outputLockPaths,
  outputPaths,
  parseDerivation,
  requiredSystemFeatures,
} from "../../src/nix/derivation.ts";

// Real .drv files written by Nix 2.8.0 (`nix-instantiate --store <tmp root>` on small
// builtins.derivation expressions), copied verbatim; String.raw keeps their escapes.
// (MULTI has no backslashes and uses a plain template: Bun 1.4's String.raw mangles non-ASCII.)
const HELLO_PATH = "/nix/store/qwadnj85a45j6r9jp977231bfpbkk17d-hello-1.0.drv";
const HELLO = String.raw`Derive([("dev","/nix/store/874fhs3bk87lj7iffm320fxda2p2dn17-hello-1.0-dev","",""),("out","/nix/store/yzp6jj447ixvarqp72n4psnmm770dsfm-hello-1.0","","")],[("/nix/store/8wr6mlm54xnvpaacj90krq52c10q6mmv-dep.drv",["out"])],["/nix/store/g9gm4561y1c1c3w16ir5v54635bpj706-a.nix"],"x86_64-linux","/bin/sh",["-c","echo \"quoted\" \\ back\n\ttab\r > $out"],[("builder","/bin/sh"),("dep","/nix/store/dqh9lqb3abv90ziv5mf2hxrbvf2ibihw-dep"),("depDev","/nix/store/dqh9lqb3abv90ziv5mf2hxrbvf2ibihw-dep"),("dev","/nix/store/874fhs3bk87lj7iffm320fxda2p2dn17-hello-1.0-dev"),("name","hello-1.0"),("out","/nix/store/yzp6jj447ixvarqp72n4psnmm770dsfm-hello-1.0"),("outputs","out dev"),("requiredSystemFeatures","kvm big-parallel"),("src","/nix/store/g9gm4561y1c1c3w16ir5v54635bpj706-a.nix"),("system","x86_64-linux")])`;
const FIXED_PATH = "/nix/store/niig8jx2xcryi14ha7259k967y3b8599-fixed.tar.gz.drv";
const FIXED = String.raw`Derive([("out","/nix/store/np4pxklj1zi4g6ciawn9gg10v072qbpk-fixed.tar.gz","sha256","0000000000000000000000000000000000000000000000000000000000000000")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fixed.tar.gz"),("out","/nix/store/np4pxklj1zi4g6ciawn9gg10v072qbpk-fixed.tar.gz"),("outputHash","0000000000000000000000000000000000000000000000000000"),("outputHashAlgo","sha256"),("outputHashMode","flat"),("system","x86_64-linux")])`;
const STRUCTURED_PATH = "/nix/store/m6j7wgrrgdnzmbh3shxj2asdrw6pg2hc-structured.drv";
const STRUCTURED = String.raw`Derive([("out","/nix/store/ifwvfhgv0hyjajvss5wwj55lj6zdi8pk-structured","","")],[("/nix/store/8wr6mlm54xnvpaacj90krq52c10q6mmv-dep.drv",["out"])],[],"aarch64-linux","/bin/sh",[],[("__json","{\"builder\":\"/bin/sh\",\"dep\":\"/nix/store/dqh9lqb3abv90ziv5mf2hxrbvf2ibihw-dep\",\"name\":\"structured\",\"requiredSystemFeatures\":[\"uid-range\",\"kvm\"],\"system\":\"aarch64-linux\"}"),("out","/nix/store/ifwvfhgv0hyjajvss5wwj55lj6zdi8pk-structured")])`;
const FLOATING_PATH = "/nix/store/mbg4w2j679yimw8cmkvjgqp572hm9wyx-floating.drv";
const FLOATING = String.raw`Derive([("lib","","r:sha256",""),("out","","r:sha256","")],[("/nix/store/8wr6mlm54xnvpaacj90krq52c10q6mmv-dep.drv",["out"])],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("dep","/nix/store/dqh9lqb3abv90ziv5mf2hxrbvf2ibihw-dep"),("lib","/0sra2y18lr3h6j58qjm0w46yv36h1wjmilb09n8aimdpivdymscx"),("name","floating"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("outputs","out lib"),("system","x86_64-linux")])`;
const MULTI_PATH = "/nix/store/cy8rdfnxvbv3ldwlsinhgba0cifvn2ql-multi.drv";
const MULTI = `Derive([("out","/nix/store/1b2k6wb7nar3p74yfcwliihqb1a2922j-multi","","")],[("/nix/store/ypn10pyri4iwwwm6xpnh5a7r8nyb20zs-lib2.drv",["dev","out"])],[],"x86_64-linux","/bin/sh",[],[("a","/nix/store/4masq756jf1x1y7s8337nafxpahx63iv-lib2-dev"),("b","/nix/store/dl2551v8h8kazgfibkwycqx30xx5wbif-lib2"),("builder","/bin/sh"),("c","ünïcode ✓"),("name","multi"),("out","/nix/store/1b2k6wb7nar3p74yfcwliihqb1a2922j-multi"),("system","x86_64-linux")])`;

// Hand-written in the DrvWithVersion("xp-dyn-drv", ...) shape that Nix 2.35's
// derivations.cc reads and writes (Nix 2.8 cannot produce it).
const DYNAMIC_PATH = "/nix/store/0000000000000000000000000000000a-dyn.drv";
const DYNAMIC = String.raw`DrvWithVersion("xp-dyn-drv",[("out","/nix/store/0000000000000000000000000000000b-dyn","","")],[("/nix/store/0000000000000000000000000000000c-gen.drv",(["out"],[("sub.drv",["bin","out"]),("deep.drv",([],[("x.drv",["out"])]))])),("/nix/store/0000000000000000000000000000000d-plain.drv",["out"])],[],"x86_64-linux","/bin/sh",[],[("out","/nix/store/0000000000000000000000000000000b-dyn")])`;

describe("parseDerivation on real Nix 2.8 output", () => {
  test("input-addressed, two outputs, escapes, inputSrcs", () => {
    const drv = parseDerivation(HELLO);
    expect(drv.version).toBe("traditional");
    expect([...drv.outputs.keys()]).toEqual(["dev", "out"]);
    expect(drv.outputs.get("out")).toEqual({
      path: "/nix/store/yzp6jj447ixvarqp72n4psnmm770dsfm-hello-1.0",
      hashAlgo: "",
      hash: "",
    });
    expect([...drv.inputDrvs]).toEqual([["/nix/store/8wr6mlm54xnvpaacj90krq52c10q6mmv-dep.drv", ["out"]]]);
    expect(drv.dynamicInputDrvs.size).toBe(0);
    expect(drv.inputSrcs).toEqual(["/nix/store/g9gm4561y1c1c3w16ir5v54635bpj706-a.nix"]);
    expect(drv.platform).toBe("x86_64-linux");
    expect(drv.builder).toBe("/bin/sh");
    expect(drv.args).toEqual(["-c", 'echo "quoted" \\ back\n\ttab\r > $out']);
    expect(drv.env.get("requiredSystemFeatures")).toBe("kvm big-parallel");
    expect(drv.env.size).toBe(10);
    expect(outputPaths(drv)).toEqual([
      "/nix/store/874fhs3bk87lj7iffm320fxda2p2dn17-hello-1.0-dev",
      "/nix/store/yzp6jj447ixvarqp72n4psnmm770dsfm-hello-1.0",
    ]);
    expect(requiredSystemFeatures(drv)).toEqual(["big-parallel", "kvm"]);
  });

  test("fixed-output", () => {
    const drv = parseDerivation(FIXED);
    expect(drv.outputs.get("out")).toEqual({
      path: "/nix/store/np4pxklj1zi4g6ciawn9gg10v072qbpk-fixed.tar.gz",
      hashAlgo: "sha256",
      hash: "0".repeat(64),
    });
    expect(hasKnownOutputPaths(drv)).toBe(true);
    expect(requiredSystemFeatures(drv)).toEqual([]);
    expect(outputLockPaths(FIXED_PATH, drv)).toEqual(["/nix/store/np4pxklj1zi4g6ciawn9gg10v072qbpk-fixed.tar.gz.lock"]);
  });

  test("structured attrs: features come from __json only", () => {
    const drv = parseDerivation(STRUCTURED);
    expect(drv.platform).toBe("aarch64-linux");
    expect(JSON.parse(drv.env.get("__json") ?? "").name).toBe("structured");
    expect(requiredSystemFeatures(drv)).toEqual(["kvm", "uid-range"]);
  });

  test("floating content-addressed: no paths, locks next to the .drv", () => {
    const drv = parseDerivation(FLOATING);
    expect(drv.outputs.get("lib")).toEqual({ path: "", hashAlgo: "r:sha256", hash: "" });
    expect(outputPaths(drv)).toEqual([]);
    expect(hasKnownOutputPaths(drv)).toBe(false);
    expect(requiredSystemFeatures(drv)).toEqual(["ca-derivations"]);
    expect(outputLockPaths(FLOATING_PATH, drv)).toEqual([`${FLOATING_PATH}.lib.lock`, `${FLOATING_PATH}.out.lock`]);
  });

  test("several outputs of one input, non-ASCII env", () => {
    const drv = parseDerivation(MULTI);
    expect(drv.inputDrvs.get("/nix/store/ypn10pyri4iwwwm6xpnh5a7r8nyb20zs-lib2.drv")).toEqual(["dev", "out"]);
    expect(drv.env.get("c")).toBe("ünïcode ✓");
    expect(outputLockPaths(MULTI_PATH, drv)).toEqual(["/nix/store/1b2k6wb7nar3p74yfcwliihqb1a2922j-multi.lock"]);
  });

  test("lock paths of input-addressed outputs are sorted", () => {
    expect(outputLockPaths(HELLO_PATH, parseDerivation(HELLO))).toEqual([
      "/nix/store/874fhs3bk87lj7iffm320fxda2p2dn17-hello-1.0-dev.lock",
      "/nix/store/yzp6jj447ixvarqp72n4psnmm770dsfm-hello-1.0.lock",
    ]);
  });

  test("a trailing newline is tolerated", () => {
    expect(parseDerivation(`${FIXED}\n`).platform).toBe("x86_64-linux");
  });
});

describe("dynamic derivations (DrvWithVersion)", () => {
  test("nested inputDrvs", () => {
    const drv = parseDerivation(DYNAMIC);
    expect(drv.version).toBe("xp-dyn-drv");
    const gen = "/nix/store/0000000000000000000000000000000c-gen.drv";
    expect(drv.inputDrvs.get(gen)).toEqual(["out"]);
    expect(drv.inputDrvs.get("/nix/store/0000000000000000000000000000000d-plain.drv")).toEqual(["out"]);
    const children = drv.dynamicInputDrvs.get(gen);
    expect(children?.get("sub.drv")).toEqual({ outputs: ["bin", "out"], children: new Map() });
    expect(children?.get("deep.drv")?.children.get("x.drv")?.outputs).toEqual(["out"]);
    expect(drv.dynamicInputDrvs.has("/nix/store/0000000000000000000000000000000d-plain.drv")).toBe(false);
    expect(outputLockPaths(DYNAMIC_PATH, drv)).toEqual(["/nix/store/0000000000000000000000000000000b-dyn.lock"]);
  });

  test("unknown version is rejected", () => {
    expect(() => parseDerivation(DYNAMIC.replace("xp-dyn-drv", "v9"))).toThrow(
      "unknown derivation ATerm format version 'v9' at offset 15",
    );
  });

  test("nested form is not allowed in the traditional format", () => {
    const text = DYNAMIC.replace('DrvWithVersion("xp-dyn-drv",', "Derive(");
    expect(() => parseDerivation(text)).toThrow(/^expected '\[' at offset \d+$/);
  });
});

function parseError(text: string): DerivationParseError {
  try {
    parseDerivation(text);
  } catch (e) {
    if (e instanceof DerivationParseError) return e;
    throw e;
  }
  throw new Error("no error");
}

const MIN = String.raw`Derive([("out","/nix/store/x","","")],[],[],"sys","/bin/sh",[],[])`;

describe("malformed input", () => {
  test.each([
    ["empty", "", "expected 'Derive(' or 'DrvWithVersion(' at offset 0 (end of input)"],
    ["not ATerm", "{}", "expected 'Derive(' or 'DrvWithVersion(' at offset 0"],
    ["missing output tuple paren", 'Derive(["out"', "expected '(' at offset 8"],
    ["truncated", MIN.slice(0, 30), `expected '"' at offset 30 (end of input)`],
    ["missing list separator", MIN.replace('[],[],"sys"', '[][],"sys"'), "expected ',' at offset 40"],
    ["bad tuple separator", MIN.replace('("out","/nix', '("out";"/nix'), "expected ',' at offset 14"],
    ["unterminated string at end", 'Derive([("out\\', "unterminated string at offset 9"],
    ["missing final paren", MIN.slice(0, -1), `expected ')' at offset ${MIN.length - 1} (end of input)`],
    ["garbage after", `${MIN}x`, `expected end of input at offset ${MIN.length}`],
    ["relative input src", MIN.replace('[],"sys"', '["rel"],"sys"'), "bad path 'rel' in derivation at offset 42"],
    ["relative output path", MIN.replace('"/nix/store/x"', '"x"'), "bad path 'x' in derivation at offset 15"],
    ["duplicate output", MIN.replace('"","")]', '"",""),("out","/nix/store/y","","")]'), "duplicate output 'out' at offset 38"],
    ["duplicate env", MIN.replace("[])", '[("a","1"),("a","2")])'), "duplicate environment variable 'a' at offset 75"],
    ["output tuple too short", MIN.replace('"/nix/store/x","",""', '"/nix/store/x",""'), "expected ',' at offset 32"],
  ])("%s", (_name, text, message) => {
    const err = parseError(text);
    expect(err.message).toBe(message);
  });

  test("offsets count UTF-8 bytes", () => {
    const text = MIN.replace("[])", '[("ü","✓")]x)');
    const err = parseError(text);
    // "ü" is 2 bytes and "✓" 3, so the stray 'x' sits 3 bytes later than its UTF-16 index.
    expect(err.offset).toBe(text.indexOf("]x)") + 1 + 3);
    expect(err.expected).toBe("')'");
  });
});

describe("requiredSystemFeatures", () => {
  const withEnv = (env: string) => parseDerivation(MIN.replace("[])", `[${env}])`));

  test("whitespace of any kind separates, duplicates collapse", () => {
    expect(requiredSystemFeatures(withEnv(String.raw`("requiredSystemFeatures","  kvm\tkvm\nbig-parallel ")`))).toEqual([
      "big-parallel",
      "kvm",
    ]);
  });

  test("env var is ignored when structured attrs are present", () => {
    const drv = withEnv(String.raw`("__json","{}"),("requiredSystemFeatures","kvm")`);
    expect(requiredSystemFeatures(drv)).toEqual([]);
  });

  test("bad __json", () => {
    expect(() => requiredSystemFeatures(withEnv(String.raw`("__json","{")`))).toThrow(DerivationAttrError);
    expect(() =>
      requiredSystemFeatures(withEnv(String.raw`("__json","{\"requiredSystemFeatures\":\"kvm\"}")`)),
    ).toThrow("attribute 'requiredSystemFeatures' must be a list of strings");
  });
});
