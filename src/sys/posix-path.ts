// node:path's posix join, normalize, dirname and basename, same results (test/unit/posix-path.test.ts
// compares them), without loading node:path: in a compiled Bun that costs ~0.6 ms of CPU, and the
// hook's path to its first answer needs only these four (bench/startup.ts).

/** Resolves `.` and `..` and collapses repeated slashes, keeping a trailing slash (path.posix.normalize). */
export function normalize(p: string): string {
  if (p.length === 0) return ".";
  const absolute = p.startsWith("/");
  const trailing = p.endsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg !== "..") out.push(seg);
    else if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (!absolute) out.push("..");
  }
  const body = out.join("/");
  if (body.length === 0) return absolute ? "/" : trailing ? "./" : ".";
  return `${absolute ? "/" : ""}${body}${trailing ? "/" : ""}`;
}

/** The non-empty parts joined by `/`, normalized (path.posix.join). */
export function join(...parts: string[]): string {
  // A loop, not filter: a JS-implemented builtin costs ~50 µs of CPU on its first use, and the hook joins
  // nsh.conf's paths before its first answer.
  let joined = "";
  for (const s of parts) if (s.length > 0) joined = joined ? `${joined}/${s}` : s;
  return joined.length === 0 ? "." : normalize(joined);
}

/** Everything before the last component (path.posix.dirname). */
export function dirname(p: string): string {
  if (p.length === 0) return ".";
  const rooted = p.startsWith("/");
  let end = -1;
  let inSlashes = true;
  for (let i = p.length - 1; i >= 1; i--) {
    if (p[i] === "/") {
      if (!inSlashes) {
        end = i;
        break;
      }
    } else inSlashes = false;
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return p.slice(0, end);
}

/** The last component, trailing slashes ignored (path.posix.basename without a suffix). */
export function basename(p: string): string {
  let start = 0;
  let end = -1;
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i] === "/") {
      if (end !== -1) {
        start = i + 1;
        break;
      }
    } else if (end === -1) end = i + 1;
  }
  return end === -1 ? "" : p.slice(start, end);
}
