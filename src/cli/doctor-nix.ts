// Pure: `nsh doctor`'s checks of how Nix reaches nsh as its build hook, from facts gathered by
// doctor.ts (the local Nix's version, nix.conf's build-hook and trusted-users, the user). Two traps
// that fail without a word (nix-protocols.md §2):
//   - Nix 2.25–2.33 ignore `build-hook` in the system nix.conf: every program goes through `nix`'s
//     main, which resets it to Nix's own build-remote after reading the file (fixed in 2.34.0);
//   - a daemon ignores `build-hook` (--option, user nix.conf, NIX_CONFIG) from a user who is not in
//     trusted-users: the build runs with the daemon's own hook.
import path from "node:path";
import { hasExternalBuilders, ignoresSystemBuildHook, type NixVersion } from "../nix/version.ts";

export interface NixHookFacts {
  /** the local Nix, from `nix-store --version`; undefined when there is none or it cannot be told */
  version: NixVersion | undefined;
  /** `build-hook` as the system nix.conf sets it, and that file */
  systemHook: { value: string; file: string } | undefined;
  /** `build-hook` from a user nix.conf or NIX_CONFIG (forwarded to the daemon like --option) */
  userHook: { value: string; file: string } | undefined;
  /** the user talks to a nix-daemon (not a local store of their own) */
  viaDaemon: boolean;
  user: string;
  groups: string[];
  /** trusted-users as the system nix.conf sets it (Nix's default: root) */
  trustedUsers: string[];
  /** the nsh binary this doctor is (its path), to tell whether a build-hook value names nsh */
  nshPath: string;
}

export interface NixHookCheck {
  what: string;
  ok: boolean;
  detail: string;
}

/** trusted-users matching (Nix's matchUser): `*`, the user's name, or `@group`. */
export function isTrusted(trusted: string[], user: string, groups: string[]): boolean {
  return trusted.some((t) => t === "*" || t === user || (t.startsWith("@") && groups.includes(t.slice(1))));
}

/** Whether a build-hook value runs nsh: its program is this binary, or is called nsh. */
export function namesNsh(value: string, nshPath: string): boolean {
  const program = value.trim().split(/\s+/)[0] ?? "";
  return program === nshPath || path.basename(program) === "nsh";
}

/** The checks, in the order a build meets them: the daemon's own setting, then a user's override. */
export function nixHookChecks(f: NixHookFacts): NixHookCheck[] {
  const v = f.version;
  const what = "build-hook";
  if (!v) {
    return [{ what, ok: false, detail: "no local Nix answered `nix-store --version`: nsh runs as Nix's build hook" }];
  }
  const named = (h: { value: string; file: string }) => `'${h.value}' (${h.file})`;
  const trusted = !f.viaDaemon || isTrusted(f.trustedUsers, f.user, f.groups);
  const instead = [
    "start nix-daemon with `--option build-hook <nsh>` (for example in a systemd drop-in)",
    "or set it in the daemon's NIX_CONFIG or root's ~/.config/nix/nix.conf",
    trusted ? "or pass `--option build-hook <nsh>` per build (you are a trusted user)" : undefined,
    hasExternalBuilders(v) ? "or use external-builders (`nsh external-builder`, Nix ≥ 2.32)" : undefined,
    "or use Nix ≥ 2.34",
  ].filter(Boolean);
  const checks: NixHookCheck[] = [];
  const sys = f.systemHook && namesNsh(f.systemHook.value, f.nshPath) ? f.systemHook : undefined;
  if (sys && ignoresSystemBuildHook(v)) {
    checks.push({
      what,
      ok: false,
      detail:
        `${v.text} ignores build-hook ${named(sys)} in the system nix.conf ` +
        "(a Nix bug in 2.25–2.33, fixed in 2.34): " +
        `the daemon runs Nix's own build-remote and nsh never sees a build. Instead: ${instead.join("; ")}`,
    });
  } else if (sys) {
    checks.push({ what, ok: true, detail: `the system nix.conf runs nsh: ${named(sys)}` });
  }
  const user = f.userHook && namesNsh(f.userHook.value, f.nshPath) ? f.userHook : undefined;
  if (!trusted && (user || !sys)) {
    const how = user ? `build-hook ${named(user)}` : "`--option build-hook <nsh>`";
    const daemonConf = ignoresSystemBuildHook(v)
      ? `on ${v.text} that is ignored too: ${instead.join("; ")}`
      : "the system nix.conf";
    checks.push({
      what: "build-hook from you",
      ok: false,
      detail:
        `the nix-daemon ignores ${how} from user ${f.user} (Nix 2.8 without a word, 2.26+ with a warning ` +
        "that is easy to miss) and builds without nsh: only trusted-users " +
        `(${f.trustedUsers.join(" ") || "none"}) may set it. Set build-hook in the daemon's nix.conf ` +
        `(${daemonConf}), ` +
        `or add ${f.user} to trusted-users`,
    });
  } else if (user) {
    const why = f.viaDaemon ? "you are a trusted user" : "no daemon";
    checks.push({ what: "build-hook from you", ok: true, detail: `${named(user)}, honoured: ${why}` });
  } else if (!sys) {
    const trust = f.viaDaemon ? " (you are a trusted user)" : "";
    const detail = `not set to nsh in nix.conf: pass \`--option build-hook ${f.nshPath}\` per build${trust}`;
    checks.push({ what, ok: true, detail });
  }
  return checks;
}
