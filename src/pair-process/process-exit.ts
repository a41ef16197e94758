// Has the primary process died? The standby asks when its private link closes,
// and every DEATH_POLL_MS while it follows sessions: a link can close while its
// primary runs on (a broken connection), and that must never be taken for a
// death. A pidfd (native addon) names the process itself, not a pid number that
// could be reused: it is readable once the process has exited. Before that, the
// kernel tears a killed process down for tens of milliseconds (its memory, then
// its files: the link closes only then), but it marks the main thread exiting
// first (PF_EXITING in /proc/<pid>/stat): from then on none of its code runs
// again, so it is as good as dead, only a system call already under way (a send)
// may still finish.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { openPidfd, waitProcessExit } from './native-pair.js';

/** How often waitExit looks again. */
const POLL_MS = 1;
/** The kernel's PF_EXITING task flag (include/linux/sched.h). */
const PF_EXITING = 0x4;

/** A task's stat line says it is a zombie, dead, or exiting. */
function exiting(stat: string): boolean {
  // "pid (comm) S ppid pgrp session tty tpgid flags ...": comm may hold spaces, so count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  return state === 'Z' || state === 'X' || (Number(fields[6]) & PF_EXITING) !== 0;
}

export class ProcessWatch {
  private pidfd: number;
  /** /proc/<pid>/stat, read again in place (a pread costs about a tenth of an open and read). */
  private statFd: number;
  private readonly stat = Buffer.alloc(1024);

  /** Throws when the process is already gone (ESRCH) or the addon is missing. */
  constructor(readonly pid: number) {
    this.pidfd = openPidfd(pid);
    this.statFd = openSync(`/proc/${pid}/stat`, 'r');
  }

  /** The process has exited (its zombie may remain until its parent reaps it). */
  gone(): boolean {
    return this.pidfd < 0 || waitProcessExit(this.pidfd, 0) === 'exited';
  }

  /** The process has exited, or its exit has begun: none of its code runs any more. */
  dying(): boolean {
    if (this.gone()) return true;
    let length: number;
    try {
      length = readSync(this.statFd, this.stat, 0, this.stat.length, 0);
    } catch {
      return true; // reaped meanwhile
    }
    return exiting(this.stat.toString('latin1', 0, length));
  }

  /**
   * Every thread of `tids` (of this process) has exited or begun to (PF_EXITING):
   * none is inside a system call any more, nor will enter one.
   */
  threadsDying(tids: readonly number[]): boolean {
    if (this.gone()) return true;
    return tids.every((tid) => {
      let text: string;
      try {
        text = readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'latin1');
      } catch {
        return true; // gone
      }
      return exiting(text);
    });
  }

  /** Resolves true as soon as the process is dying, false if it still runs after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.dying()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  close(): void {
    if (this.pidfd < 0) return;
    closeSync(this.pidfd);
    closeSync(this.statFd);
    this.pidfd = -1;
  }
}
