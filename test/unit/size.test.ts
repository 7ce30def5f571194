// Sizes as users write them (options, nsh.conf, environment): binary units, decimals, optional iB/B.
import { expect, test } from "bun:test";
import { parseSizeText } from "../../src/util/size.ts";

test.each([
  ["4096", 4096],
  ["0", 0],
  ["64M", 64 * 2 ** 20],
  ["64m", 64 * 2 ** 20],
  ["1.5G", 1.5 * 2 ** 30],
  ["2GiB", 2 * 2 ** 30],
  ["512 K", 512 * 1024],
  ["1T", 2 ** 40],
  ["lots", undefined],
  ["-1M", undefined],
  ["64X", undefined],
  ["", undefined],
] as const)("%p → %p", (text, want) => expect(parseSizeText(text)).toBe(want));
