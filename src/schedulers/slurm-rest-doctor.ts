// What `nsh doctor` checks of slurmrestd: where the JWT comes from, that slurmrestd answers in an API
// version nsh speaks, and that slurmctld accepts the token (a 200 ping alone proves no token).
import type { DoctorCheck } from "./scheduler.ts";
import type { Negotiated } from "./slurm-rest-options.ts";
import type { ApiVersion } from "./slurm-rest-shapes.ts";

export interface RestDoctorSubject {
  negotiate(): Promise<Negotiated>;
  describe(): string;
  /** throws the authentication (or unreachable) error when slurmctld does not accept the token */
  checkToken(version: ApiVersion): Promise<void>;
}

export async function restDoctorChecks(
  s: RestDoctorSubject,
  token: { source: string; warnings: readonly string[]; user: string },
): Promise<DoctorCheck[]> {
  const warned = token.warnings.length ? `; ${token.warnings.join("; ")}` : "";
  const checks: DoctorCheck[] = [{ ok: true, what: "JWT", detail: `from ${token.source}${warned}` }];
  let version: ApiVersion;
  try {
    const n = await s.negotiate();
    version = n.version;
    const detail = `${s.describe()}: API ${n.version} (served: ${n.served.join(", ")}; ${n.via})`;
    checks.push({ ok: true, what: "slurmrestd", detail });
  } catch (e) {
    return [...checks, { ok: false, what: "slurmrestd", detail: (e as Error).message }];
  }
  try {
    await s.checkToken(version);
    checks.push({ ok: true, what: "JWT accepted", detail: `slurmctld answered an authenticated request as user ${token.user}` });
  } catch (e) {
    checks.push({ ok: false, what: "JWT accepted", detail: (e as Error).message });
  }
  return checks;
}
