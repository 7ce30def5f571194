// The PBS lab's pure parts: /etc/hosts edits keep every other line, a subnet
// in use is never picked, pbs.conf names the namespace host everywhere, and
// qstat's JSON is read by full or short job id.
import { describe, expect, test } from "bun:test";
import { hostsWith, hostsWithout, labNames, pickSubnet } from "../lab/pbs-netns.ts";
import { parseQstatJson, pbsConf } from "../lab/pbs.ts";

const base = "127.0.0.1 localhost\n127.0.0.1 vm\n10.231.0.2 pbs-lab   # OpenPBS netns lab (nshpbs)\n";
const entry = (id: string, third: number) => ({
  id, nsAddr: `10.231.${third}.2`, hostAddr: `10.231.${third}.1`, nsHost: `nshpbs-${id}`, hostHost: `nshpbs-${id}-gw`,
});
const a = entry("00ab", 130);
const b = entry("00cd", 131);

describe("/etc/hosts edits", () => {
  test("adding then removing a lab gives back the file unchanged", () => {
    const withA = hostsWith(base, a);
    expect(withA).toContain("10.231.130.2 nshpbs-00ab # nsh PBS lab 00ab\n");
    expect(withA).toContain("10.231.130.1 nshpbs-00ab-gw # nsh PBS lab 00ab\n");
    expect(hostsWithout(withA, "00ab")).toBe(base);
  });
  test("two labs: removing one keeps the other and every foreign line", () => {
    const both = hostsWith(hostsWith(base, a), b);
    const onlyB = hostsWithout(both, "00ab");
    expect(onlyB).not.toContain("nshpbs-00ab");
    expect(onlyB).toContain("nshpbs-00cd ");
    expect(onlyB.startsWith(base)).toBe(true);
  });
  test("re-adding a lab replaces its lines; a file without a final newline keeps its last line", () => {
    expect(hostsWith(hostsWith(base, a), a)).toBe(hostsWith(base, a));
    expect(hostsWith("127.0.0.1 localhost", a).split("\n")[0]).toBe("127.0.0.1 localhost");
  });
});

describe("subnet choice", () => {
  test("skips subnets named in addresses, routes or /etc/hosts; wraps within 128..250", () => {
    expect(pickSubnet("", 0)).toEqual({ hostAddr: "10.231.128.1", nsAddr: "10.231.128.2" });
    const used = "inet 10.231.128.1/30 ...\n10.231.129.0/30 dev x\n10.231.130.2 somehost";
    expect(pickSubnet(used, 0).hostAddr).toBe("10.231.131.1");
    expect(pickSubnet("", 122).hostAddr).toBe("10.231.250.1");
    expect(pickSubnet("", 123).hostAddr).toBe("10.231.128.1");
    expect(pickSubnet("10.231.1280.5", 0).hostAddr).toBe("10.231.128.1");
  });
  test("all taken: a clear error", () => {
    const all = Array.from({ length: 123 }, (_, i) => `10.231.${128 + i}.1`).join("\n");
    expect(() => pickSubnet(all, 0)).toThrow(/no free 10\.231/);
  });
});

test("interface names fit the kernel's 15 characters", () => {
  const n = labNames("ffff");
  expect(n.hostIf.length).toBeLessThanOrEqual(15);
  expect(n.nsIf.length).toBeLessThanOrEqual(15);
  expect(n.hostIf).not.toBe(n.nsIf);
});

test("pbs.conf: the namespace host is server, leaf and MoM; private home, exec and datastore port", () => {
  const conf = pbsConf({ exec: "/c/pbs", home: "/t/home", host: "nshpbs-00ab", dataPort: 20171 });
  const lines = conf.split("\n");
  for (const k of ["PBS_SERVER", "PBS_SERVER_HOST_NAME", "PBS_LEAF_NAME", "PBS_MOM_NODE_NAME"]) {
    expect(lines).toContain(`${k}=nshpbs-00ab`);
  }
  expect(lines).toContain("PBS_EXEC=/c/pbs");
  expect(lines).toContain("PBS_HOME=/t/home");
  expect(lines).toContain("PBS_DATA_SERVICE_PORT=20171");
});

test("qstat -F json: a job by full or short id; garbage or an unknown id gives null", () => {
  const text = JSON.stringify({ Jobs: { "7.nshpbs-00ab": { job_state: "F", Exit_status: 0 } } });
  expect(parseQstatJson(text, "7.nshpbs-00ab")).toEqual({ job_state: "F", Exit_status: 0 });
  expect(parseQstatJson(text, "7")?.job_state).toBe("F");
  expect(parseQstatJson(text, "8.nshpbs-00ab")).toBeNull();
  expect(parseQstatJson("qstat: Unknown Job Id", "7")).toBeNull();
});
