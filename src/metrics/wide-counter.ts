// A 32-bit counter in shared memory (it wraps at 2^32) widened to a number that
// only grows. The data paths add to Int32 words with one Atomics.add each (a
// 64-bit word would need a BigInt per add); the control plane reads each word
// often enough that it cannot wrap twice between two reads: every scrape and
// every SAMPLE_INTERVAL_MS (metrics.ts). At 10 Gbit/s a byte counter wraps in 3.4 s.

export class WideCounter {
  readonly #read: () => number;
  /** The word as last read (unsigned). */
  #last = 0;
  #total = 0;

  /** `read`: the word's current value, unsigned (`>>> 0`); it starts from 0 with the engine. */
  constructor(read: () => number) {
    this.#read = read;
  }

  /** Reads the word and returns everything counted since the engine started. */
  value(): number {
    const now = this.#read();
    this.#total += (now - this.#last) >>> 0;
    this.#last = now;
    return this.#total;
  }
}
