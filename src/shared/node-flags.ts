// The Node flags a twinframe process starts with (package.json's start script,
// the bin's first line, every launcher in bench/ and test/, ava's workers).
//
// --single-threaded-gc: each isolate does all its garbage collection on its own
// thread. By default V8 hands parts of it (concurrent marking and sweeping, the
// cppgc sweep) to helper threads of normal priority, and the heap's thread waits
// for them, re-posting a task to its own event loop meanwhile. A SCHED_FIFO data
// path or supervisor waiting so never yields the core to the helper it waits
// for: with two of them at once on two cores, nothing else ran until the
// kernel's real-time throttle (950 ms in every second) let the helpers finish.
// Measured idle, 5-15 s after start: about 1 s of two full cores in 5 of 10
// starts without the flag, in none of 10 with it (README, "Idle cost").

export const SERVER_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The SERVER_NODE_FLAGS this process was not started with. */
export function missingNodeFlags(): string[] {
  return SERVER_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));
}
