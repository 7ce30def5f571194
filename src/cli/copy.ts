// `nsh copy --to HOST [--to HOST…] PATH…` and `nsh copy --from HOST … PATH…`.
import { defineCommand } from "citty";
import { runCopy } from "../remote/copy-command.ts";

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === "string" ? [v] : []);

export const copyCommand = defineCommand({
  meta: {
    name: "copy",
    description:
      "Copy store paths and their closures to or from hosts over ssh (Nix's serve protocol), skipping what the " +
      "other side has. --to/--from take an ssh destination ([user@]host[:port] or a ~/.ssh/config alias); " +
      "several, given repeatedly or comma-separated, are tried in order.",
  },
  args: {
    to: { type: "string", description: "copy to this host (repeatable, or comma-separated: failover)" },
    from: { type: "string", description: "copy from this host (repeatable, or comma-separated: failover)" },
    "remote-store": { type: "string", description: "store URL on the remote host (nsh.conf remote-store)" },
    "remote-nix-bin-dir": { type: "string", description: "Nix's bin directory on the remote host (nsh.conf remote-nix-bin-dir)" },
    store: { type: "string", description: "the local store (default: Nix's own choice)" },
    json: { type: "boolean", description: "machine-readable progress events on stdout" },
    "ssh-config": { type: "string", description: "ssh client config file to use instead of ~/.ssh/config (like ssh -F)" },
    "openssh-min-size": {
      type: "string",
      description:
        "NARs this big or bigger go through OpenSSH's ssh when it is installed; 0: always ssh2 " +
        "(nsh.conf openssh-min-size, default 64M)",
    },
  },
  async run({ args }) {
    const paths = (args._ as string[]).filter(Boolean);
    process.exitCode = await runCopy({
      to: list(args.to),
      from: list(args.from),
      paths,
      remoteStore: args["remote-store"] as string | undefined,
      remoteNixBinDir: args["remote-nix-bin-dir"] as string | undefined,
      store: args.store as string | undefined,
      json: Boolean(args.json),
      sshConfig: args["ssh-config"] as string | undefined,
      opensshMinSize: args["openssh-min-size"] as string | undefined,
    });
  },
});
