// Keeping RSS bounded while streaming big data through JavaScript (NAR copies, the agent binary's
// hash and upload): callers count the bytes they allocated, and collections run when RSS is high.
/**
 * Streaming allocates fresh buffers per chunk (pipe reads, ssh2's packets and ciphertext), and
 * JavaScriptCore collects them lazily: left alone, a 1 GiB copy's RSS passes 200 MiB. A full
 * collection every few MiB kept it under 100 MiB but took half of the copy's CPU (~10 ms each,
 * 250 per GiB). So: a cheap young-generation collection every 2 MiB once RSS is above the soft
 * limit, and a full one only when RSS nears the bound (measured on 512 MiB: CPU 2.4 s instead of
 * 3.4 s, peak 95 MiB).
 */
const CHECK_EVERY = 2 << 20;
const SOFT_RSS_LIMIT = 72 << 20;
const FULL_GC_ABOVE = 86 << 20;
let sinceCheck = 0;
export function countForGc(n: number): void {
  sinceCheck += n;
  if (sinceCheck < CHECK_EVERY) return;
  sinceCheck = 0;
  const rss = process.memoryUsage.rss();
  if (rss > FULL_GC_ABOVE) Bun.gc(true);
  else if (rss > SOFT_RSS_LIMIT) Bun.gc(false);
}
