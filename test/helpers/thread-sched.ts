// A thread's scheduling policy and priority as /proc shows them.

/** One thread's scheduling (proc(5), /proc/<pid>/task/<tid>/stat). */
export interface ThreadSched {
  /** 0 SCHED_OTHER, 1 SCHED_FIFO, 2 SCHED_RR. */
  readonly policy: number;
  readonly rtPriority: number;
  readonly nice: number;
}

/** Parse a task's stat line: fields counted after the parenthesized command name. */
export function parseTaskStat(stat: string): ThreadSched {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): field n is fields[n - 3].
  return { nice: Number(fields[19 - 3]), rtPriority: Number(fields[40 - 3]), policy: Number(fields[41 - 3]) };
}
