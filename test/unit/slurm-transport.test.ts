// Expected: slurmrestd's URL carries the configured scheme (IPv6 literals bracketed); a JWT about
// to go over plain http to a host that is not loopback draws a warning, https or loopback none;
// TLS certificate failures are recognised by their codes; a CA file without a PEM certificate is
// caught before Bun's fetch would fail on it with "FailedToOpenSocket".
import { expect, test } from "bun:test";
import { cleartextTokenWarning, holdsPemCertificate, isCertificateError, isLoopbackHost, slurmApiBaseUrl } from "../../src/schedulers/slurm-transport.ts";

test.each([
  ["http", "localhost", 6820, "http://localhost:6820"],
  ["https", "slurm.example.org", 443, "https://slurm.example.org:443"],
  ["https", "::1", 6820, "https://[::1]:6820"],
  ["http", "[fe80::1]", 6820, "http://[fe80::1]:6820"],
] as const)("%s %s %d -> %s", (scheme, host, port, want) => {
  expect(slurmApiBaseUrl(scheme, host, port)).toBe(want);
});

test.each([
  ["localhost", true],
  ["LOCALHOST", true],
  ["api.localhost", true],
  ["127.0.0.1", true],
  ["127.1.2.3", true],
  ["::1", true],
  ["[::1]", true],
  ["::ffff:127.0.0.1", true],
  ["vm", false],
  ["slurm.example.org", false],
  ["10.0.0.5", false],
  ["128.0.0.1", false],
  ["localhost.example.org", false],
  ["fe80::1", false],
] as const)("loopback %s: %p", (host, want) => {
  expect(isLoopbackHost(host)).toBe(want);
});

test.each([
  ["http", "slurm.example.org", true],
  ["http", "10.0.0.5", true],
  ["http", "127.0.0.1", false],
  ["http", "localhost", false],
  ["https", "slurm.example.org", false],
] as const)("%s to %s warns: %p", (scheme, host, warns) => {
  const w = cleartextTokenWarning(scheme, host, 6820);
  if (warns) expect(w).toContain(`${host}:6820`);
  else expect(w).toBeNull();
});

test.each([
  ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", true],
  ["DEPTH_ZERO_SELF_SIGNED_CERT", true],
  ["SELF_SIGNED_CERT_IN_CHAIN", true],
  ["ERR_TLS_CERT_ALTNAME_INVALID", true],
  ["CERT_HAS_EXPIRED", true],
  ["ECONNREFUSED", false],
  ["ECONNRESET", false],
  [undefined, false],
] as const)("certificate error %s: %p", (code, want) => {
  expect(isCertificateError(code)).toBe(want);
});

test.each([
  ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", true],
  ["# site CA\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", true],
  ["-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", false],
  ["", false],
  ["garbage", false],
] as const)("PEM certificate in %p: %p", (text, want) => {
  expect(holdsPemCertificate(text)).toBe(want);
});
