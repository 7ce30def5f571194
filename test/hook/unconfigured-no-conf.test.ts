// Expected: with `build-hook = nsh` and no nsh.conf at all (none in NIX_CONF_DIR or the user's
// config directory, no NSH_CONF, no SLURM_JWT), nsh accepts nothing: every build goes to Nix's own
// build hook or is built locally and succeeds. Each hook process warns once, naming what is
// missing: nsh.conf, slurm-state-dir and a JWT. (Before, nsh accepted the build and failed it with
// "slurm-state-dir is not set".) Real Nix 2.8, single-user and through the daemon.
import { unconfiguredScenario } from "./unconfigured.ts";

unconfiguredScenario({
  name: "noconf",
  setup: () => {},
  named: ["nsh.conf (none found at", "slurm-state-dir", "a JWT for slurmrestd (slurm-jwt-token, slurm-jwt-token-file or SLURM_JWT"],
  notNamed: [],
});
