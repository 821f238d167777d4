/**
 * A process's CPU time from /proc/PID/stat: utime + stime (fields 14 and 15), process-wide, so
 * stunnel's per-connection threads count, the finished ones too (the kernel folds an exiting
 * thread's time into its process). In clock ticks (`getconf CLK_TCK`, 100 on Linux): 10 ms steps.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/** The processes whose parent is `pid` (field 4 of /proc/PID/stat): a cluster primary's workers. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      /* ended while listed */
    }
  }
  return out;
}

/** Write system calls the process has made so far (/proc/PID/io `syscw`: write and writev, not sendmsg). */
export function writeSyscalls(pid: number): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

/** CPU seconds the whole machine has spent busy so far (all cores; /proc/stat, everything but idle and iowait). */
export function machineBusySeconds(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: guest time is already inside user.
  return (ticks.slice(0, 8).reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]) / TICKS_PER_SECOND;
}
