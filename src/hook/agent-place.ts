// Pure: the shell scripts that check and place nsh's agent binary on the cluster's login host.
//
// A binary counts as placed only when it is executable, has the right size, and a stamp next to it
// (`<bin>.ok`, "<sha256> <size>") says that this very content was verified after its upload. The
// check is one `test`, one `cat` and one `wc -c` (a size from fstat): a per-build re-hash of 110 MB
// would cost seconds. The stamp is written only after the upload was verified (size and sha256 on
// the cluster side) and renamed into place, so a cut-short upload never looks placed.
//
// Many hooks may find the binary missing at once (a scratch purge before a wide build): placing runs
// under a lock on the cluster (flock, or a mkdir lock where flock is missing), re-checks once it
// holds it, and only the first uploads; the others hear "present" and send nothing.
import path from "node:path";

export interface AgentIdentity {
  /** Where the binary goes: `<slurm-state-dir>/bin/nsh-<hash prefix>` */
  bin: string;
  sha256: string;
  size: number;
}

/** How long a hook waits for another one's upload before placing the binary itself (s). */
export const PLACE_LOCK_WAIT_SEC = 600;

const q = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

export const stampPath = (bin: string) => `${bin}.ok`;
export const stampText = (a: AgentIdentity) => `${a.sha256} ${a.size}`;

/** sh: true when the binary is placed and verified (see the head of this file). */
function placedTest(a: AgentIdentity): string {
  const b = q(a.bin);
  const stamped = `test "$(cat ${q(stampPath(a.bin))} 2>/dev/null)" = ${q(stampText(a))}`;
  return `test -x ${b} && ${stamped} && test "$(wc -c < ${b} | tr -d ' ')" = ${a.size}`;
}

/** One round trip for every build: the job's directory, and whether the agent is there ("present"/"missing"). */
export function checkCommand(a: AgentIdentity, jobDir: string): string {
  const prepare = `mkdir -p ${q(jobDir)} && chmod 700 ${q(path.posix.dirname(jobDir))}`;
  return `${prepare} && { ${placedTest(a)} && echo present || echo missing; }`;
}

/**
 * The placing script (for `sh -c`): takes the lock, says "present" when another hook placed the
 * binary meanwhile, else "send", reads exactly the binary from stdin into a temporary name unique
 * to this upload, verifies size and sha256, renames it into place, writes the stamp, says "placed".
 * Anything short or wrong is deleted and fails with a message on stderr (exit 3).
 */
export function placeScript(a: AgentIdentity, uploadId: string): string {
  const dir = path.posix.dirname(a.bin);
  const lock = path.posix.join(dir, `.${path.posix.basename(a.bin)}.lock`);
  const wait = PLACE_LOCK_WAIT_SEC;
  const refuse = (why: string) => `echo "nsh: the agent binary uploaded to $bin ${why}; nothing was installed" >&2; exit 3`;
  return [
    `bin=${q(a.bin)}; stamp=${q(stampPath(a.bin))}; tmp=${q(`${a.bin}.upload-${uploadId}`)}; lock=${q(lock)}`,
    `want=${q(stampText(a))}; size=${a.size}; sha=${a.sha256}; held=`,
    `mkdir -p ${q(dir)} || exit 1`,
    `trap 'rm -f "$tmp" "$tmp.ok"; test -n "$held" && rmdir "$lock.d" 2>/dev/null' EXIT`,
    `trap 'exit 1' HUP INT TERM PIPE`,
    // flock where there is one (released when this shell exits, however it exits)...
    `if command -v flock >/dev/null 2>&1; then`,
    `  exec 9>>"$lock"`,
    `  flock -w ${wait} 9 || echo "nsh: waited ${wait} s for $lock; placing the agent anyway" >&2`,
    // ...else a directory as the lock, taken over when it is older than the longest wait.
    `else`,
    `  n=0`,
    `  until mkdir "$lock.d" 2>/dev/null; do`,
    `    stale=$(find "$lock.d" -maxdepth 0 -mmin +${Math.ceil(wait / 60)} 2>/dev/null)`,
    `    if test -n "$stale"; then rmdir "$lock.d" 2>/dev/null; continue; fi`,
    `    n=$((n + 1)); if test "$n" -gt ${wait}; then break; fi; sleep 1`,
    `  done`,
    `  test "$n" -le ${wait} && held=1`,
    `fi`,
    `if ${placedTest(a)}; then echo present; exit 0; fi`,
    // Leftovers of uploads whose shell was killed outright (no trap ran).
    `find ${q(dir)} -maxdepth 1 -name ${q(`nsh-*.upload-*`)} -mmin +60 -exec rm -f {} + 2>/dev/null`,
    `echo send`,
    `cat > "$tmp" || exit 1`,
    `got=$(wc -c < "$tmp" | tr -d ' ')`,
    `if test "$got" != "$size"; then ${refuse("was cut short ($got of $size bytes arrived)")}; fi`,
    `if command -v sha256sum >/dev/null 2>&1; then sum=$(sha256sum < "$tmp")`,
    `elif command -v shasum >/dev/null 2>&1; then sum=$(shasum -a 256 < "$tmp")`,
    `elif command -v openssl >/dev/null 2>&1; then sum=$(openssl dgst -sha256 < "$tmp" | sed 's/^.*= *//')`,
    `else sum=$sha`,
    `  echo "nsh: no sha256sum, shasum or openssl on $(hostname): the agent binary's size was checked, not its sha256" >&2`,
    `fi`,
    `sum=\${sum%% *}`,
    `if test "$sum" != "$sha"; then ${refuse("has sha256 $sum, not $sha")}; fi`,
    // The stamp goes last: a binary is never taken as verified before it is whole and in place.
    `chmod 755 "$tmp" && rm -f "$stamp" && mv -f "$tmp" "$bin" || exit 1`,
    `printf '%s\\n' "$want" > "$tmp.ok" && mv -f "$tmp.ok" "$stamp" || exit 1`,
    `echo placed`,
  ].join("\n");
}

/** The placing script as a command, whatever the login shell (bash, zsh, fish: one sh-quoted word). */
export const placeCommand = (a: AgentIdentity, uploadId: string) => `sh -c ${q(placeScript(a, uploadId))}`;
