// Sizes as users write them in options and nsh.conf: "4096", "64M", "1.5G", "2GiB" (binary units).
const UNIT: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Bytes, or undefined when `text` is not a size (pure). */
export function parseSizeText(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNIT[m[2]!.toUpperCase()]!) : undefined;
}
