// Pure: what a closure copy has to send, in which order. Nix requires a path's references to be
// valid before the path is added, so paths go dependencies first.

export interface PathMeta {
  references: string[];
  narSize: number;
}

export class CycleError extends Error {}

/** Dependencies first; ties in name order, so plans are stable. Self-references are allowed. */
export function topoSort(infos: ReadonlyMap<string, PathMeta>): string[] {
  const out: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (p: string, trail: string[]) => {
    const s = state.get(p);
    if (s === "done") return;
    if (s === "visiting") throw new CycleError(`reference cycle: ${[...trail, p].join(" -> ")}`);
    state.set(p, "visiting");
    for (const r of [...(infos.get(p)?.references ?? [])].sort()) if (r !== p && infos.has(r)) visit(r, [...trail, p]);
    state.set(p, "done");
    out.push(p);
  };
  for (const p of [...infos.keys()].sort()) visit(p, []);
  return out;
}

export interface CopyPlan {
  /** Paths to send, dependencies first. */
  send: string[];
  /** Paths the destination already has. */
  present: string[];
  bytes: number;
}

export function planCopy(infos: ReadonlyMap<string, PathMeta>, valid: ReadonlySet<string>): CopyPlan {
  const order = topoSort(infos);
  const send = order.filter((p) => !valid.has(p));
  return { send, present: order.filter((p) => valid.has(p)), bytes: send.reduce((n, p) => n + (infos.get(p)?.narSize ?? 0), 0) };
}

/** Pure: `paths` and everything they reference, as far as `infos` knows the references. */
export function closureWithin(infos: ReadonlyMap<string, PathMeta>, paths: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const todo = [...paths];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    if (out.has(p)) continue;
    out.add(p);
    for (const r of infos.get(p)?.references ?? []) if (!out.has(r)) todo.push(r);
  }
  return out;
}

/**
 * Pure: the first question for the destination. A store keeps a valid path's closure valid, so the
 * requested roots alone settle it when all of them are there: ask just them when the validity
 * cache believes they are (one short query). Otherwise ask the whole closure at once: a root the
 * destination lacks may have lost its dependencies too (a garbage collection, a wiped store), so
 * the cache is never believed below it. The cache only picks the question; the destination answers.
 */
export function firstValidityQuery(roots: readonly string[], closure: readonly string[], cachedValid: ReadonlySet<string>): string[] {
  return roots.length > 0 && roots.every((r) => cachedValid.has(r)) ? [...new Set(roots)] : [...closure];
}

/**
 * Pure: what the destination's answer `said` (the valid ones among `asked`) establishes: the
 * closures of the valid paths are valid; `unknown` is what is neither established nor asked yet.
 */
export function afterValidityAnswer(
  infos: ReadonlyMap<string, PathMeta>,
  closure: readonly string[],
  asked: readonly string[],
  said: ReadonlySet<string>,
): { valid: Set<string>; unknown: string[] } {
  const valid = closureWithin(infos, asked.filter((p) => said.has(p)));
  const askedSet = new Set(asked);
  return { valid, unknown: closure.filter((p) => !valid.has(p) && !askedSet.has(p)) };
}
