// Whether a build goes to the cluster (seed 004, "Managing Which Derivations Get Built on the
// Cluster"). Pure. A derivation goes when
//   - its system is the cluster's `system`,
//   - every feature it requires is in `system-features` ∪ `mandatory-system-features`,
//   - it requires every one of `mandatory-system-features`.
// `builtin` (builtin:fetchurl, buildenv, unpack-channel) never goes, whatever `system` says: Nix's
// build-remote runs it on any machine, but as a cluster job it would cost a scheduler round trip
// for a download or a symlink farm, and compute nodes often have no internet. The fallback (or a
// local build) does it instead.
import type { NshConfig } from "../config/nsh-conf.ts";
import type { TryRequest } from "../nix/hook-protocol.ts";

export type Decision = { take: true } | { take: false; reason: string };

export type DecisionConf = Pick<NshConfig, "system" | "system-features" | "mandatory-system-features">;

// Loops rather than map/filter: every hook runs this before its first answer, and each JS-implemented
// builtin costs ~0.1 ms of CPU on its first use in a process (bench/startup.ts).
const list = (xs: Iterable<string>) => {
  let out = "";
  for (const x of xs) out += `${out ? ", " : ""}'${x}'`;
  return out;
};
const notIn = (xs: Iterable<string>, set: ReadonlySet<string>) => {
  const out: string[] = [];
  for (const x of xs) if (!set.has(x)) out.push(x);
  return out;
};

export function decide(req: Pick<TryRequest, "system" | "requiredFeatures">, conf: DecisionConf): Decision {
  const reasons: string[] = [];
  if (req.system === "builtin") reasons.push("it uses a builtin builder, which runs here, not as a cluster job");
  else if (req.system !== conf.system) reasons.push(`its system is '${req.system}', the cluster's is '${conf.system}'`);

  const mandatory = conf["mandatory-system-features"];
  const offered = new Set([...conf["system-features"], ...mandatory]);
  const required = new Set(req.requiredFeatures);
  const unsupported = notIn(required, offered);
  if (unsupported.length > 0) {
    const have = offered.size > 0 ? `the cluster offers ${list(offered)}` : "the cluster offers none";
    reasons.push(`it requires ${unsupported.length > 1 ? "features" : "the feature"} ${list(unsupported)} (${have})`);
  }
  const missing = notIn(mandatory, required);
  if (missing.length > 0) {
    reasons.push(`it does not require the mandatory ${missing.length > 1 ? "features" : "feature"} ${list(missing)} (mandatory-system-features)`);
  }
  return reasons.length === 0 ? { take: true } : { take: false, reason: reasons.join("; ") };
}
