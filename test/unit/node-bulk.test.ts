// The command of the hook's bulk session on the job's node (pure): the node's nix-store --serve with
// remote-store and remote-nix-bin-dir, in the job's environment (job-environment).
import { expect, test } from "bun:test";
import { bulkServeCommand } from "../../src/hook/node-bulk.ts";

test.each([
  [{ environment: [] }, "nix-store --serve --write"],
  [{ remoteStore: "auto", environment: [] }, "nix-store --serve --write"],
  [{ remoteStore: "/local/nix", nixBinDir: "/opt/nix/bin", environment: [] }, "/opt/nix/bin/nix-store --serve --write --store /local/nix"],
  [{ environment: ["NIX_CONF_DIR=/etc/nix", "NIX_STATE_DIR=/scratch/nix var"] }, "env NIX_CONF_DIR=/etc/nix 'NIX_STATE_DIR=/scratch/nix var' nix-store --serve --write"],
  [{ environment: ["A=it's"] }, "env 'A=it'\\''s' nix-store --serve --write"],
])("%j → %s", (target, want) => {
  expect(bulkServeCommand(target)).toBe(want);
});

test("a job-environment word without '=' is an error naming it", () => {
  expect(() => bulkServeCommand({ environment: ["NOEQUALS"] })).toThrow(/job-environment expects NAME=VALUE words, got 'NOEQUALS'/);
});
