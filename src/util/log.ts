// Logging through consola: its fancy layout on a terminal, plain "name: message" lines otherwise
// (logs of a hook or a CI run are read by people grepping, not looking at badges).
import { createConsola, type ConsolaInstance, type LogObject } from "consola";

const started = Date.now();

const plainReporter = (tag: string, timed: boolean) => ({
  log(obj: LogObject) {
    const level = obj.type === "warn" ? "warning: " : obj.type === "error" || obj.type === "fatal" ? "error: " : "";
    const msg = obj.args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
    // With --verbose, the time since start: when nix was stopped and continued matters.
    const time = timed ? `[${((Date.now() - started) / 1000).toFixed(2)}s] ` : "";
    process.stderr.write(`${tag}: ${time}${level}${msg}\n`);
  },
});

export function makeLogger(tag: string, opts: { verbose?: boolean; quiet?: boolean } = {}): ConsolaInstance {
  const level = opts.quiet ? 1 : opts.verbose ? 4 : 3;
  if (process.stderr.isTTY && !opts.verbose) return createConsola({ level, defaults: { tag } });
  return createConsola({ level, reporters: [plainReporter(tag, opts.verbose === true)] });
}
