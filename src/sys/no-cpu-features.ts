// Imported before ssh2 (remote/ssh.ts). ssh2 asks for the optional native `cpu-features` to order its
// ciphers; build.ts leaves it out of the binary, so Bun would look for it at run time in node_modules
// from the working directory up and run whatever it found there (a /tmp/node_modules planted by
// another user, say). Answering with an empty module makes ssh2 fall back at once, as it does when
// the package is missing. NSH_DEBUG_LOADED=<file>: "ssh2" is appended to it when ssh2 is evaluated,
// so tests see which personalities load it (test/startup-loads.test.ts).
import { appendFileSync } from "node:fs";
import { plugin } from "bun";

plugin({
  name: "no-cpu-features",
  setup(build) {
    build.module("cpu-features", () => {
      if (process.env.NSH_DEBUG_LOADED) appendFileSync(process.env.NSH_DEBUG_LOADED, "ssh2\n");
      return { exports: {}, loader: "object" };
    });
  },
});
