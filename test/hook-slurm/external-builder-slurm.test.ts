// nsh as external builder with job-scheduler = slurm; what each test expects: external-builder-suite.ts.
import { externalBuilderSuite } from "./external-builder-suite.ts";

externalBuilderSuite("slurm");
