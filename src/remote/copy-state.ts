// The shared state a copy uses: the validity cache and the host-wide byte budget, both in nsh's
// state database. A state directory that cannot be used costs only the cache and the budget: the
// copy itself goes ahead, with a warning.
import { Budget } from "../state/budget.ts";
import { openStateDb } from "../state/db.ts";
import { ensureStateDir } from "../state/dir.ts";
import { PathCache } from "../state/path-cache.ts";

export interface CopyState {
  cache?: PathCache;
  budget?: Budget;
  close(): void;
}

export function openCopyState(dir: string | undefined, budgetBytes: number, warn: (m: string) => void): CopyState {
  try {
    const db = openStateDb(dir ?? ensureStateDir());
    return {
      cache: new PathCache(db),
      budget: new Budget(db, budgetBytes > 0 ? { totalBytes: budgetBytes } : {}),
      close: () => db.close(),
    };
  } catch (e) {
    warn(`${(e as Error).message}; copying without the shared cache and transfer budget`);
    return { close() {} };
  }
}
