// Expected: with an nsh.conf that has a token (a readable slurm-jwt-token-file) but no
// slurm-state-dir, nsh accepts nothing: every build goes to Nix's own build hook or is built
// locally and succeeds, and each hook process warns once, naming slurm-state-dir (and not the
// token). (Before, nsh accepted the build and failed it with "slurm-state-dir is not set".) Real Nix
// 2.8, single-user and through the daemon.
import fs from "node:fs";
import path from "node:path";
import { unconfiguredScenario } from "./unconfigured.ts";

unconfiguredScenario({
  name: "nostate",
  setup: (lab) => {
    const jwt = path.join(lab.root, "slurm.jwt");
    fs.writeFileSync(jwt, "a-token\n", { mode: 0o600 });
    fs.writeFileSync(path.join(lab.confDir, "nsh.conf"), `slurm-api-host = login.test\nslurm-jwt-token-file = ${jwt}\n`);
  },
  named: ["slurm-state-dir"],
  notNamed: ["JWT", "slurm-jwt-token", "nsh.conf"],
});
