import { readFileSync, writeFileSync } from 'node:fs';

/** Resident memory of a process from /proc/PID/status, in MiB: now (VmRSS) and the peak (VmHWM). */
export interface Rss {
  rss: number;
  hwm: number;
}

export function readRss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

/**
 * Resets VmHWM to the current RSS (`5` to /proc/PID/clear_refs, Linux 4.0+), so a peak is measured
 * from this moment, not from start-up. False when the kernel or permissions do not allow it.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export const mib = (x: number): string => `${x.toFixed(1)} MiB`;
