// nsh as external builder with job-scheduler = pbs-cli; what each test expects: external-builder-scenarios.ts.
import { externalBuilderPbsScenarios } from "./external-builder-scenarios.ts";

externalBuilderPbsScenarios("pbs-cli");
