// The core end-to-end scenarios with job-scheduler = slurm-cli; what each expects: backend-suite.ts.
import { backendSuite } from "./backend-suite.ts";

backendSuite("slurm-cli");
