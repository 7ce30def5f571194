// Pure: what the wrapper reports at exit, on stderr and as JSON (--report FILE).
import { mib } from "./admission.ts";

export interface BuildRecord {
  drv: string;
  reply: string;
  ok?: boolean;
  seconds?: number;
}

export interface SigstopReport {
  exitCode: number;
  /** Distinct derivations nix waited for while evaluating (import-from-derivation and other builds). */
  ifdBuilds: number;
  builds: BuildRecord[];
  stops: number;
  /** Times nix ran while builds were pending because the daemon's messages to it filled the proxy. */
  drainResumes: number;
  stoppedSeconds: number;
  resumeWaitSeconds: number;
  peakRssBytes: number;
  peakSwapBytesWhileStopped: number;
  proxy?: ProxyReport;
}

/**
 * How nix reached the daemon. peakRssBytes and cpuSeconds are the guard's (CPU: user + system,
 * start-up included); absent in direct mode if the guard did not answer at the end.
 */
export type ProxyReport =
  /** Through the guard's relay: connections relayed, most bytes queued in one, bytes to nix. */
  | { mode: "relay"; connections: number; peakQueuedBytes: number; bytesToClient: number; peakRssBytes: number; cpuSeconds: number }
  /**
   * Straight to the daemon's socket; the numbers come from watching nix's daemon connections while
   * it was stopped: most bytes waiting for nix in one, most of the daemon's send buffer in use and
   * that buffer's size, and how many times the queues were read.
   */
  | {
    mode: "direct"; connections: number; peakQueuedBytes: number; peakDaemonSendBytes: number;
    daemonSendBufferBytes: number; polls: number; peakRssBytes?: number; cpuSeconds?: number;
  };

export function formatReport(r: SigstopReport): string {
  const parts = [
    `${r.ifdBuilds} build${r.ifdBuilds === 1 ? "" : "s"} waited for`,
    `nix stopped ${r.stops} time${r.stops === 1 ? "" : "s"} for ${r.stoppedSeconds.toFixed(1)} s`,
    `peak RSS ${mib(r.peakRssBytes)}`,
    `most in swap while stopped ${mib(r.peakSwapBytesWhileStopped)}`,
  ];
  if (r.drainResumes > 0) parts.push(`continued ${r.drainResumes} time${r.drainResumes === 1 ? "" : "s"} to read build logs`);
  if (r.resumeWaitSeconds > 0.05) parts.push(`waited ${r.resumeWaitSeconds.toFixed(1)} s for memory to resume`);
  return `nix-sigstop: ${parts.join("; ")}`;
}
