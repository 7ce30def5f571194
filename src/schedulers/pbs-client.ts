// `nsh __pbs-client`: one IFL conversation (connect, one call, disconnect) in a process of its own.
// The pbs scheduler (pbs.ts) starts it with the uid and gid of pbs-user, because libpbs
// authenticates the calling uid (pbs_iff, munge) and PBS runs a job as the user who submitted it;
// and because libpbs's calls block, so they stay out of the hook's event loop.
// It reads one JSON request on stdin and writes one JSON answer on stdout.
import * as fs from "node:fs";
import * as path from "node:path";
import { CString, type Pointer, read } from "bun:ffi";
import { libc } from "../sys/libc.ts";
import {
  attrlNames, attroplList, cstr, LibpbsLoadError, openLibpbs, pbsErrno, type PbsSymbols, readBatchStatus,
  readDeljobStatus, stringArray,
} from "./pbs-ffi.ts";
import type { PbsAttr, PbsJobRecord } from "./pbs-shapes.ts";

export const PBSE_UNKJOBID = 15001;
export const PBSE_HISTJOBID = 15139;
const PBSE_JOBHISTNOTSET = 15140; // "PBS is not configured to maintain job history" (statjob with "x")

export type ClientRequest =
  | { op: "ping" }
  | { op: "submit"; attrs: PbsAttr[]; script: string; scriptDir: string }
  | { op: "status"; ids: string[]; names: string[]; history: boolean }
  | { op: "server"; names: string[] }
  | { op: "cancel"; ids: string[] };

export interface ClientCall {
  /** libpbs.so.0's path */
  lib: string;
  /** "host:port" for pbs_connect */
  server: string;
  request: ClientRequest;
}

export type ClientAnswer =
  | { ok: true; id?: string; jobs?: PbsJobRecord[]; failed?: { id: string; code: number; text: string }[]; server?: string }
  | { ok: false; stage: "load" | "connect" | "call"; errno: number; message: string };

const SOCKET_ERRNOS: Record<number, string> = {
  111: "connection refused", 110: "connection timed out", 113: "no route to host", 101: "network unreachable",
  104: "connection reset by peer",
};

class IflError extends Error {
  constructor(
    readonly stage: "load" | "connect" | "call",
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

const text = (lib: PbsSymbols, errno: number): string => String(lib.pbse_to_txt(errno) ?? "") || `PBS error ${errno}`;

/** The conversation itself (exported for the child's main below). */
export function runCall(call: ClientCall): ClientAnswer {
  let lib: PbsSymbols;
  try {
    lib = openLibpbs(call.lib);
  } catch (e) {
    const why = e instanceof LibpbsLoadError ? e.message : String(e);
    return { ok: false, stage: "load", errno: 0, message: why };
  }
  const c = lib.pbs_connect(cstr(call.server));
  if (c < 0) {
    const errno = pbsErrno(lib);
    // PBSE_SYSTEM's text is "System error: " with the reason left out: the socket's errno says it.
    const sys = SOCKET_ERRNOS[read.i32(libc().__errno_location() as Pointer, 0)];
    const message = [errno ? text(lib, errno).replace(/:\s*$/, "") : "cannot connect", sys].filter(Boolean).join(": ");
    return { ok: false, stage: "connect", errno, message };
  }
  try {
    return { ok: true, ...request(lib, c, call.request) };
  } catch (e) {
    if (e instanceof IflError) return { ok: false, stage: e.stage, errno: e.errno, message: e.message };
    return { ok: false, stage: "call", errno: 0, message: e instanceof Error ? e.message : String(e) };
  } finally {
    lib.pbs_disconnect(c);
  }
}

function failure(lib: PbsSymbols, c: number): IflError {
  const errno = pbsErrno(lib);
  const msg = String(lib.pbs_geterrmsg(c) ?? "") || text(lib, errno);
  return new IflError("call", errno, msg);
}

function request(lib: PbsSymbols, c: number, r: ClientRequest): Omit<ClientAnswer & { ok: true }, "ok"> {
  switch (r.op) {
    case "ping":
      return { server: String(lib.pbs_default() ?? "") };
    case "submit": {
      // pbs_submit reads the script from a file: a private one, gone once the server has it.
      const dir = fs.mkdtempSync(path.join(r.scriptDir, "pbs-submit-"));
      try {
        const file = path.join(dir, "job.sh");
        fs.writeFileSync(file, r.script, { mode: 0o600 });
        const attrs = attroplList(r.attrs);
        const id = lib.pbs_submit(c, attrs.head, cstr(file), null, null) as Pointer | null;
        void attrs.keep;
        if (!id) throw failure(lib, c);
        return { id: readCString(id) };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    case "status":
      return { jobs: statJobs(lib, c, r.ids, r.names, r.history) };
    case "server": {
      const names = attrlNames(r.names);
      const st = lib.pbs_statserver(c, names.head, null) as Pointer | null;
      void names.keep;
      if (!st) throw failure(lib, c);
      const jobs = readBatchStatus(st);
      lib.pbs_statfree(st);
      return { jobs };
    }
    case "cancel": {
      if (r.ids.length === 0) return { failed: [] };
      const list = stringArray(r.ids);
      const st = lib.pbs_deljoblist(c, list.head, r.ids.length, null) as Pointer | null;
      void list.keep;
      const errno = pbsErrno(lib);
      if (!st && errno !== 0 && errno !== PBSE_UNKJOBID && errno !== PBSE_HISTJOBID) throw failure(lib, c);
      const failed = readDeljobStatus(st).map((f) => ({ ...f, text: text(lib, f.code) }));
      if (st) lib.pbs_delstatfree(st);
      return { failed };
    }
  }
}

/**
 * One pbs_statjob for all `ids` (history too with "x"), or for all jobs the user may see. The server
 * leaves out ids it does not know, and fails the call (PBSE_UNKJOBID) only when it knows none of them.
 */
function statJobs(lib: PbsSymbols, c: number, ids: string[], names: string[], history: boolean): PbsJobRecord[] {
  const attrl = attrlNames(names);
  let extend = history ? cstr("x") : null;
  const one = (idList: string | null): PbsJobRecord[] => {
    const st = lib.pbs_statjob(c, idList === null ? null : cstr(idList), attrl.head, extend) as Pointer | null;
    if (!st) {
      const errno = pbsErrno(lib);
      if (errno === 0) return []; // no jobs at all
      if (errno === PBSE_JOBHISTNOTSET && extend !== null) {
        extend = null; // the server keeps no history: ask again for the live jobs only
        return one(idList);
      }
      if (errno === PBSE_UNKJOBID && idList !== null) return []; // none of them is known
      throw failure(lib, c);
    }
    const jobs = readBatchStatus(st);
    lib.pbs_statfree(st);
    return jobs;
  };
  const jobs = one(ids.length === 0 ? null : ids.join(","));
  void attrl.keep;
  return jobs;
}

// pbs_submit's answer is malloc'd and ours to free; the process ends soon, so it is left.
const readCString = (p: Pointer): string => new CString(p).toString();

/** The child's main: one request in, one answer out. */
export async function runPbsClient(): Promise<number> {
  const input = await Bun.stdin.text();
  let call: ClientCall;
  try {
    call = JSON.parse(input) as ClientCall;
  } catch {
    process.stdout.write(JSON.stringify({ ok: false, stage: "call", errno: 0, message: "bad request" }));
    return 2;
  }
  process.stdout.write(JSON.stringify(runCall(call)));
  return 0;
}

if (import.meta.main) process.exitCode = await runPbsClient();
