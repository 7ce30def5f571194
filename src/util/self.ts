// How to run this program again (for the hook script, notifiers and the guard), compiled or not.
export const compiled = Bun.main.startsWith("/$bunfs/");

export function selfCommand(): string[] {
  return compiled ? [process.execPath] : [process.execPath, Bun.main];
}

export const VERSION = "0.1.0";
