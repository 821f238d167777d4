/**
 * A process's CPU time from /proc/PID/stat: utime + stime (fields 14 and 15), process-wide, so
 * stunnel's per-connection threads count, the finished ones too (the kernel folds an exiting
 * thread's time into its process). In clock ticks (`getconf CLK_TCK`, 100 on Linux): 10 ms steps.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds the process has used so far, in user and in system (kernel) mode. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** Runs `work`, and says how much CPU `pid` used meanwhile (NaN without a pid: nothing to charge). */
export async function charged<T>(pid: number | undefined, work: () => Promise<T>): Promise<{ result: T; cpu: number }> {
  const before = pid === undefined ? NaN : cpuSeconds(pid);
  const result = await work();
  return { result, cpu: pid === undefined ? NaN : cpuSeconds(pid) - before };
}
