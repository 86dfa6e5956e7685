// CPU accounting over the measured window: this process (all threads), the
// whole machine (/proc/stat) and optionally a server process (/proc/<pid>/stat).
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuSample {
  at: number;               // ms
  self: NodeJS.CpuUsage;    // us
  machineBusy: number;      // jiffies
  machineTotal: number;
  server: number | null;    // jiffies (utime + stime)
}

const HZ = 100; // USER_HZ on Linux

function machine(): [number, number] {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return [total - idle, total];
  } catch { return [0, 0]; }
}

function procJiffies(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  } catch { return null; }
}

/** A process's CPU time so far, all threads (utime + stime), in seconds. */
export function procCpuSec(pid: number): number | null {
  const j = procJiffies(pid);
  return j === null ? null : j / HZ;
}

export function sampleCpu(serverPid?: number): CpuSample {
  const [busy, total] = machine();
  return { at: performance.now(), self: process.cpuUsage(), machineBusy: busy, machineTotal: total, server: serverPid ? procJiffies(serverPid) : null };
}

export interface CpuReport {
  clientPct: number;        // 100 = one core
  machineBusyPct: number;   // 100 = every core busy
  cores: number;
  serverPct: number | null; // 100 = one core
}

export function cpuBetween(a: CpuSample, b: CpuSample): CpuReport {
  const wallUs = (b.at - a.at) * 1000;
  const self = b.self.user - a.self.user + b.self.system - a.self.system;
  const mt = b.machineTotal - a.machineTotal;
  return {
    clientPct: wallUs > 0 ? (100 * self) / wallUs : 0,
    machineBusyPct: mt > 0 ? (100 * (b.machineBusy - a.machineBusy)) / mt : 0,
    cores: os.cpus().length,
    serverPct: a.server !== null && b.server !== null && wallUs > 0 ? (100 * ((b.server - a.server) / HZ) * 1e6) / wallUs : null,
  };
}
