// The command of the hook's bulk session on the job's node (pure): the node's nix-store --serve with
// remote-store and remote-nix-bin-dir, in the job's environment: store-dir (as NIX_STORE_DIR, for
// the node's sshd passes none), then job-environment.
import { expect, test } from "bun:test";
import { bulkServeCommand } from "../../src/hook/node-bulk.ts";

test.each([
  [{ environment: [] }, "nix-store --serve --write"],
  [{ remoteStore: "auto", environment: [] }, "nix-store --serve --write"],
  [{ remoteStore: "/local/nix", nixBinDir: "/opt/nix/bin", environment: [] }, "/opt/nix/bin/nix-store --serve --write --store /local/nix"],
  [{ environment: ["NIX_CONF_DIR=/etc/nix", "NIX_STATE_DIR=/scratch/nix var"] }, "/usr/bin/env NIX_CONF_DIR=/etc/nix 'NIX_STATE_DIR=/scratch/nix var' nix-store --serve --write"],
  [{ environment: ["A=it's"] }, "/usr/bin/env 'A=it'\\''s' nix-store --serve --write"],
  [{ remoteStoreDir: "/cluster/nix/store", environment: [] }, "/usr/bin/env NIX_STORE_DIR=/cluster/nix/store nix-store --serve --write"],
  [{ remoteStoreDir: "/nix/store", environment: [] }, "nix-store --serve --write"],
  [{ remoteStoreDir: "/s", remoteStore: "/local/nix", environment: ["NIX_CONF_DIR=/etc/nix"] }, "/usr/bin/env NIX_STORE_DIR=/s NIX_CONF_DIR=/etc/nix nix-store --serve --write --store /local/nix"],
])("%j → %s", (target, want) => {
  expect(bulkServeCommand(target)).toBe(want);
});

test("a job-environment word without '=' is an error naming it", () => {
  expect(() => bulkServeCommand({ environment: ["NOEQUALS"] })).toThrow(/job-environment expects NAME=VALUE words, got 'NOEQUALS'/);
});
