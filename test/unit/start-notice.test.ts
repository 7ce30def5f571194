// Expected: the start notice's codec. The job's environment names where the notice goes as
// TOKEN@HOST:PORT (an IPv6 host in brackets); anything else means no notice (the hook then polls).
// Only a line carrying the hook's own token counts.
import { describe, expect, test } from "bun:test";
import { formatNoticeTarget, noticeLine, noticeMatches, parseNoticeTarget } from "../../src/agent/start-notice.ts";

const token = "0123456789abcdef0123456789abcdef";

describe("parseNoticeTarget", () => {
  test.each([
    ["host and port", `${token}@login1:40123`, { token, host: "login1", port: 40123 }],
    ["an address", `${token}@10.1.2.3:5`, { token, host: "10.1.2.3", port: 5 }],
    ["IPv6 in brackets", `${token}@[fe80::1]:6000`, { token, host: "fe80::1", port: 6000 }],
    ["unset", undefined, undefined],
    ["no token", `@login1:40123`, undefined],
    ["a short token", `abc@login1:40123`, undefined],
    ["port 0", `${token}@login1:0`, undefined],
    ["port too big", `${token}@login1:70000`, undefined],
    ["a host with a shell word", `${token}@login1;rm:40`, undefined],
    ["no port", `${token}@login1`, undefined],
  ] as const)("%s", (_l, text, want) => expect(parseNoticeTarget(text)).toEqual(want));

  test("round trip", () => {
    const t = { token, host: "login-2.cluster", port: 65535 };
    expect(parseNoticeTarget(formatNoticeTarget(t))).toEqual(t);
  });
});

describe("noticeMatches", () => {
  test.each([
    ["the notice line", noticeLine(token), true],
    ["without its newline", `nsh-started ${token}`, true],
    ["with CRLF", `nsh-started ${token}\r\n`, true],
    ["another token", noticeLine("f".repeat(32)), false],
    ["a prefix of the token", noticeLine(token.slice(0, 31)), false],
    ["the token alone", token, false],
    ["empty", "", false],
  ] as const)("%s", (_l, line, want) => expect(noticeMatches(line, token)).toBe(want));
});
