// The pure parts of the lab's Debian roots: the suite a run asks for (a typo is a clear error, not
// a silent bookworm run), the mirror read from the machine's apt sources, and the bind list.
import { expect, test } from "bun:test";
import { bindPaths, debianMirror, rootName, ROOT_PACKAGES, selectedSuite } from "../lab/root-scripts.ts";

test("NSH_LAB_SUITE: unset or empty is bookworm; trixie and sid as named; anything else is an error naming it", () => {
  expect(selectedSuite({})).toBe("bookworm");
  expect(selectedSuite({ NSH_LAB_SUITE: " " })).toBe("bookworm");
  expect(selectedSuite({ NSH_LAB_SUITE: "sid" })).toBe("sid");
  expect(selectedSuite({ NSH_LAB_SUITE: "trixie" })).toBe("trixie");
  expect(() => selectedSuite({ NSH_LAB_SUITE: "bullseye" })).toThrow(/NSH_LAB_SUITE="bullseye".*bookworm, trixie, sid/);
});

const table: Array<[string, Array<{ name: string; text: string }>, string | undefined]> = [
  [
    "deb822, security stanza skipped",
    [
      {
        name: "/etc/apt/sources.list.d/debian.sources",
        text: `Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n` +
          `Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n`,
      },
    ],
    "http://mirror.example/debian",
  ],
  [
    "one-line list with options; a third-party repo and a disabled file ignored",
    [
      { name: "/etc/apt/sources.list.d/google.list.disabled-by-farm", text: "deb http://x.example/debian bookworm main\n" },
      {
        name: "/etc/apt/sources.list.d/nodesource.sources",
        text: "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n",
      },
      { name: "/etc/apt/sources.list", text: "# comment\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n" },
    ],
    "http://ftp.de.debian.org/debian",
  ],
  ["nothing usable", [{ name: "/etc/apt/sources.list", text: "deb-src http://deb.debian.org/debian bookworm main\n" }], undefined],
  ["Enabled: no", [{ name: "a.sources", text: "Enabled: no\nTypes: deb\nURIs: http://m/debian\nSuites: bookworm\n" }], undefined],
];
for (const [name, files, want] of table) {
  test(`mirror from apt sources: ${name}`, () => expect(debianMirror(files)).toBe(want));
}

test("bind paths: deduplicated, nested and / dropped", () => {
  expect(bindPaths(["/tmp", "/tmp/", "/var/tmp", "/work/wt/i", "/work/wt/i/test", "/"])).toEqual(["/tmp", "/var/tmp", "/work/wt/i"]);
});

test("a root's cache name changes with its package list", () => {
  expect(rootName("sid")).toMatch(/^sid-[0-9a-f]{12}$/);
  expect(rootName("sid")).not.toBe(rootName("sid", [...ROOT_PACKAGES, "hello"]));
  expect(rootName("sid")).not.toBe(rootName("trixie"));
});
