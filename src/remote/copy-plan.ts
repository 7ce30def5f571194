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
