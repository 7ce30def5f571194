// Expected: with an nsh.conf that sets slurm-state-dir but gives no JWT (no slurm-jwt-token, no
// slurm-jwt-token-file, no SLURM_JWT in the hook's environment), nsh accepts nothing: every build
// goes to Nix's own build hook or is built locally and succeeds, and each hook process warns once,
// naming the JWT settings (and not slurm-state-dir). (Before, nsh accepted the build and failed it
// with "no JWT for slurmrestd".) Real Nix 2.8, single-user and through the daemon.
import fs from "node:fs";
import path from "node:path";
import { unconfiguredScenario } from "./unconfigured.ts";

unconfiguredScenario({
  name: "notoken",
  setup: (lab) => {
    fs.writeFileSync(path.join(lab.confDir, "nsh.conf"), "slurm-api-host = login.test\nslurm-state-dir = /cluster/nsh\n");
  },
  named: ["a JWT for slurmrestd (slurm-jwt-token, slurm-jwt-token-file or SLURM_JWT in the environment)"],
  notNamed: ["slurm-state-dir", "nsh.conf"],
});
