// What nsh's FFI modules (one per native library) share: a library opened once per process, and
// NSH_FFI_TRACE=1, which prints every call of its symbols, the result and the time to stderr as
// `nsh ffi: <library> <symbol>(<args>) -> <result> (<ms> ms)`. How a value is shown is each
// module's call: user data (job scripts, environments) only by its length.
import { dlopen, type FFIFunction, type Library } from "bun:ffi";

/** The functions of a library opened with the symbol table `Fns`. */
export type Symbols<Fns extends Record<string, FFIFunction>> = Library<Fns>["symbols"];

/** Libraries opened so far: by symbol table, then file. */
const opened = new WeakMap<object, Map<string, unknown>>();

/**
 * The library at `file` with `symbols`, opened once per process (dlopen cannot take a library back
 * safely). dlopen's failure becomes `loadError(its message)`; `check` may refuse the library
 * (thrown as is; a refused library is not kept).
 */
export function openOnce<Fns extends Record<string, FFIFunction>>(
  file: string,
  symbols: Fns,
  loadError: (message: string) => Error,
  check: (syms: Symbols<Fns>) => void = () => {},
): Symbols<Fns> {
  let byFile = opened.get(symbols);
  if (!byFile) opened.set(symbols, (byFile = new Map()));
  let syms = byFile.get(file) as Symbols<Fns> | undefined;
  if (!syms) {
    try {
      syms = dlopen(file, symbols).symbols;
    } catch (e) {
      throw loadError(e instanceof Error ? e.message : String(e));
    }
    check(syms);
    byFile.set(file, syms);
  }
  return syms;
}

/** How a trace line shows one argument or the result of a call of `symbol`. */
export type ShowValue = (value: unknown, symbol: string, role: "arg" | "result") => string;

/** `syms` as they are, or (NSH_FFI_TRACE=1 in `env`) each wrapped to trace its calls to stderr. */
export function tracedIfAsked<S extends object>(
  env: Record<string, string | undefined>,
  library: string,
  syms: S,
  show: ShowValue,
): S {
  if (env.NSH_FFI_TRACE !== "1") return syms;
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(syms) as [string, (...a: unknown[]) => unknown][]) {
    out[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      const result = fn(...args);
      const ms = (performance.now() - t0).toFixed(1);
      const shownArgs = args.map((a) => show(a, name, "arg")).join(", ");
      process.stderr.write(`nsh ffi: ${library} ${name}(${shownArgs}) -> ${show(result, name, "result")} (${ms} ms)\n`);
      return result;
    };
  }
  return out as S;
}
