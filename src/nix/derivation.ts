// Parser for Nix's ATerm `.drv` files, following libstore/derivations.cc
// (parseDerivation) of Nix 2.8 through 2.35. Pure: callers read the file.
//
// Format: Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])
// or, for dynamic derivations (Nix's xp-dyn-drv experimental feature),
// DrvWithVersion("xp-dyn-drv",[outputs],[inputDrvs],...) where an inputDrvs entry's
// outputs may be `(["out",...],[("outName",<node>),...])` instead of `["out",...]`.

export interface DerivationOutput {
  /** Empty for floating content-addressed, deferred and impure outputs. */
  path: string;
  /** "" for input-addressed; e.g. "sha256" or "r:sha256" for content-addressed. */
  hashAlgo: string;
  /** Fixed-output hash (hex); "" unless fixed; "impure" for impure derivations. */
  hash: string;
}

/** An output of a dynamic derivation: which of its outputs are needed, and deeper levels. */
export interface InputDrvNode {
  outputs: string[];
  children: Map<string, InputDrvNode>;
}

export interface Derivation {
  outputs: Map<string, DerivationOutput>;
  /** Input derivation path → the outputs of it that are needed directly. */
  inputDrvs: Map<string, string[]>;
  /**
   * Only for DrvWithVersion("xp-dyn-drv"): input derivation path → its outputs
   * that are themselves derivations, with what is needed from them. Usually empty.
   */
  dynamicInputDrvs: Map<string, Map<string, InputDrvNode>>;
  inputSrcs: string[];
  platform: string;
  builder: string;
  args: string[];
  env: Map<string, string>;
  /** "traditional" for `Derive(`, else the DrvWithVersion version string. */
  version: "traditional" | "xp-dyn-drv";
}

/** Malformed ATerm; `offset` is in bytes of the UTF-8 text, as on disk. */
export class DerivationParseError extends Error {
  override name = "DerivationParseError";
  constructor(
    readonly offset: number,
    readonly expected: string,
    detail?: string,
  ) {
    super(detail ?? `expected ${expected} at offset ${offset}`);
  }
}

/** A well-formed derivation whose attributes have the wrong type (e.g. in `__json`). */
export class DerivationAttrError extends Error {
  override name = "DerivationAttrError";
}

const DYN_VERSION = "xp-dyn-drv";

class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  /** Byte offset of `pos`: only computed when reporting an error. */
  byteOffset(at = this.pos): number {
    return new TextEncoder().encode(this.text.slice(0, at)).length;
  }

  fail(expected: string, at = this.pos, detail?: string): never {
    const offset = this.byteOffset(at);
    const end = at >= this.text.length ? " (end of input)" : "";
    throw new DerivationParseError(
      offset,
      expected,
      detail === undefined ? `expected ${expected} at offset ${offset}${end}` : `${detail} at offset ${offset}`,
    );
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  expect(s: string): void {
    if (!this.text.startsWith(s, this.pos)) this.fail(`'${s}'`);
    this.pos += s.length;
  }

  /** A C-style quoted string; like Nix, `\n` `\r` `\t` are control characters and `\x` is `x`. */
  string(): string {
    const open = this.pos;
    this.expect('"');
    let out = "";
    // Work segment by segment up to the next quote, so that large env values
    // (e.g. __json) cost linear time and no search runs past the string's end.
    for (;;) {
      const quote = this.text.indexOf('"', this.pos);
      if (quote === -1) this.fail("'\"'", open, "unterminated string");
      const segment = this.text.slice(this.pos, quote);
      const backslash = segment.indexOf("\\");
      if (backslash === -1) {
        this.pos = quote + 1;
        return out + segment;
      }
      // The escaped character may be the quote we found; it never ends the string.
      const esc = this.text[this.pos + backslash + 1];
      if (esc === undefined) this.fail("'\"'", open, "unterminated string");
      out += segment.slice(0, backslash);
      out += esc === "n" ? "\n" : esc === "r" ? "\r" : esc === "t" ? "\t" : esc;
      this.pos += backslash + 2;
    }
  }

  /** Nix only checks that paths in a derivation are absolute (validatePath). */
  path(): string {
    const at = this.pos;
    const s = this.string();
    if (!s.startsWith("/")) this.fail("an absolute path", at, `bad path '${s}' in derivation`);
    return s;
  }

  /** `[item,item,...]`; the opening bracket is consumed here. */
  list(item: () => void): void {
    this.expect("[");
    if (this.peek() === "]") {
      this.pos++;
      return;
    }
    for (;;) {
      item();
      const c = this.peek();
      if (c === ",") this.pos++;
      else if (c === "]") {
        this.pos++;
        return;
      } else this.fail("',' or ']'");
    }
  }

  strings(): string[] {
    const res: string[] = [];
    this.list(() => res.push(this.string()));
    return res;
  }
}

function insertNew<V>(map: Map<string, V>, key: string, value: V, what: string, r: Reader, at: number): void {
  if (map.has(key)) r.fail(`a unique ${what}`, at, `duplicate ${what} '${key}'`);
  map.set(key, value);
}

/** One inputDrvs value: `["out",...]`, or in the versioned format also `([...],[(name,node),...])`. */
function inputDrvNode(r: Reader, dynamic: boolean): InputDrvNode {
  const children = new Map<string, InputDrvNode>();
  if (r.peek() === "[") return { outputs: r.strings(), children };
  if (!dynamic || r.peek() !== "(") r.fail(dynamic ? "'[' or '('" : "'['");
  r.expect("(");
  const outputs = r.strings();
  r.expect(",");
  r.list(() => {
    r.expect("(");
    const at = r.pos;
    const name = r.string();
    r.expect(",");
    insertNew(children, name, inputDrvNode(r, dynamic), "dynamic output", r, at);
    r.expect(")");
  });
  r.expect(")");
  return { outputs, children };
}

export function parseDerivation(text: string): Derivation {
  const r = new Reader(text);
  let version: Derivation["version"] = "traditional";
  if (text.startsWith("DrvWithVersion(")) {
    r.pos = "DrvWithVersion(".length;
    const at = r.pos;
    const v = r.string();
    if (v !== DYN_VERSION) r.fail(`'"${DYN_VERSION}"'`, at, `unknown derivation ATerm format version '${v}'`);
    version = DYN_VERSION;
    r.expect(",");
  } else if (text.startsWith("Derive(")) {
    r.pos = "Derive(".length;
  } else {
    r.fail("'Derive(' or 'DrvWithVersion('");
  }

  const outputs = new Map<string, DerivationOutput>();
  r.list(() => {
    r.expect("(");
    const at = r.pos;
    const name = r.string();
    r.expect(",");
    const pathAt = r.pos;
    const path = r.string();
    if (path !== "" && !path.startsWith("/")) r.fail("an absolute path", pathAt, `bad path '${path}' in derivation`);
    r.expect(",");
    const hashAlgo = r.string();
    r.expect(",");
    const hash = r.string();
    r.expect(")");
    insertNew(outputs, name, { path, hashAlgo, hash }, "output", r, at);
  });

  const inputDrvs = new Map<string, string[]>();
  const dynamicInputDrvs = new Map<string, Map<string, InputDrvNode>>();
  r.expect(",");
  r.list(() => {
    r.expect("(");
    const at = r.pos;
    const drvPath = r.path();
    r.expect(",");
    const node = inputDrvNode(r, version !== "traditional");
    insertNew(inputDrvs, drvPath, node.outputs, "input derivation", r, at);
    if (node.children.size > 0) dynamicInputDrvs.set(drvPath, node.children);
    r.expect(")");
  });

  r.expect(",");
  const inputSrcs: string[] = [];
  r.list(() => inputSrcs.push(r.path()));
  r.expect(",");
  const platform = r.string();
  r.expect(",");
  const builder = r.string();
  r.expect(",");
  const args = r.strings();

  const env = new Map<string, string>();
  r.expect(",");
  r.list(() => {
    r.expect("(");
    const at = r.pos;
    const name = r.string();
    r.expect(",");
    const value = r.string();
    r.expect(")");
    insertNew(env, name, value, "environment variable", r, at);
  });
  r.expect(")");

  // Nix ignores what follows; we allow only whitespace (e.g. a trailing newline in a fixture).
  const rest = text.slice(r.pos);
  if (rest.trim() !== "") r.fail("end of input", r.pos + (rest.length - rest.trimStart().length));

  return { outputs, inputDrvs, dynamicInputDrvs, inputSrcs, platform, builder, args, env, version };
}

/** The output paths known before building (floating CA, deferred and impure outputs have none). */
export function outputPaths(drv: Derivation): string[] {
  return [...drv.outputs.values()].map((o) => o.path).filter((p) => p !== "");
}

/** Whether every output path is known in advance (Nix's DerivationType::hasKnownOutputPaths). */
export function hasKnownOutputPaths(drv: Derivation): boolean {
  return [...drv.outputs.values()].every((o) => o.path !== "");
}

function jsonStructuredAttrs(drv: Derivation): Record<string, unknown> | undefined {
  const raw = drv.env.get("__json");
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new DerivationAttrError(`cannot process __json attribute: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new DerivationAttrError("cannot process __json attribute: not a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/**
 * The system features a build needs, as Nix computes them for the build hook
 * (ParsedDerivation / DerivationOptions::getRequiredSystemFeatures): with
 * structured attrs only the `__json` list counts, else the whitespace-separated
 * env var; "ca-derivations" is added when some output path is not known in
 * advance. Sorted and de-duplicated, like Nix's StringSet.
 */
export function requiredSystemFeatures(drv: Derivation): string[] {
  const features = new Set<string>();
  const structured = jsonStructuredAttrs(drv);
  if (structured !== undefined) {
    const list = structured["requiredSystemFeatures"];
    if (list !== undefined) {
      if (!Array.isArray(list) || !list.every((x): x is string => typeof x === "string")) {
        throw new DerivationAttrError("attribute 'requiredSystemFeatures' must be a list of strings");
      }
      for (const f of list) features.add(f);
    }
  } else {
    for (const f of (drv.env.get("requiredSystemFeatures") ?? "").split(/[ \t\n\r]+/)) {
      if (f !== "") features.add(f);
    }
  }
  if (!hasKnownOutputPaths(drv)) features.add("ca-derivations");
  return [...features].sort();
}

/**
 * The lock files Nix takes before building `drvPath` (build/derivation-goal.cc,
 * later derivation-building-goal.cc, plus pathlocks.cc's ".lock" suffix): each
 * known output path, or `<drvPath>.<output>` when the path is not known yet.
 * Sorted, as Nix locks them in PathSet order. These are logical store paths:
 * with a chroot store, prefix the real store root yourself.
 */
export function outputLockPaths(drvPath: string, drv: Derivation): string[] {
  const locks = new Set<string>();
  for (const [name, o] of drv.outputs) {
    locks.add(`${o.path !== "" ? o.path : `${drvPath}.${name}`}.lock`);
  }
  return [...locks].sort();
}
