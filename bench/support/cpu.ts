import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * The processes of a PostgreSQL server on this machine (command name `postgres`, any user): the
 * database's share of a durable call when it runs beside the gateway on the same cores. Empty
 * when there is none (or /proc says nothing).
 */
export function localPostgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // Gone since the listing, or not ours to read.
    }
  }
  return pids;
}

/** CPU seconds of each process of `pids` still there (one that ended since is left out). */
export function cpuByPid(pids: number[]): Map<number, number> {
  const used = new Map<number, number>();
  for (const pid of pids) {
    try {
      used.set(pid, cpuSeconds(pid));
    } catch {
      // Ended.
    }
  }
  return used;
}
