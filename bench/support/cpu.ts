import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU time of processes, from /proc (Linux): what the CPU-per-call columns are made of. */

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat's CPU times: `getconf CLK_TCK`. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(value) || value <= 0) throw new Error(`getconf CLK_TCK answered "${value}"`);
    ticksPerSecond = value;
  }
  return ticksPerSecond;
}

/** CPU time a process has used so far (user + system, /proc/<pid>/stat, all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 (11 and 12 after the name), in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}
