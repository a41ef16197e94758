// A bound on how many lines one source (a client address) may put in the log: a
// flood of bad requests must not become a flood of log lines. Each key may log
// `perKey` lines per window, and all keys together `total`; what is over is
// counted, not logged, and once the window in which lines were suppressed is
// over, `onSuppressed` is called once per key with the count (the caller logs
// one summary line). Windows are fixed, per key, from the key's first line.

export interface LogRateLimitOptions {
  /** Lines one key may log per window. */
  readonly perKey: number;
  /** Lines all keys together may log per window. */
  readonly total: number;
  readonly windowMs: number;
  /** Called after a window in which `key` had `suppressed` lines held back. */
  readonly onSuppressed: (key: string, suppressed: number, windowMs: number) => void;
  /** The clock, for tests; default performance.now. */
  readonly now?: () => number;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
}

export class LogRateLimit {
  readonly #options: LogRateLimitOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  #total: Window = { start: Number.NEGATIVE_INFINITY, logged: 0, suppressed: 0 };
  /** Ends windows (and reports) while any is open, so a flood that stops is still summed up. */
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: LogRateLimitOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** May a line for `key` be logged now? A false answer is counted for the key's summary. */
  allow(key: string): boolean {
    const now = this.#now();
    this.#endWindows(now);
    let window = this.#windows.get(key);
    if (window === undefined) {
      window = { start: now, logged: 0, suppressed: 0 };
      this.#windows.set(key, window);
      this.#sweeper ??= setInterval(() => this.#endWindows(this.#now()), this.#options.windowMs).unref();
    }
    if (now - this.#total.start >= this.#options.windowMs) this.#total = { start: now, logged: 0, suppressed: 0 };
    if (window.logged >= this.#options.perKey || this.#total.logged >= this.#options.total) {
      window.suppressed++;
      return false;
    }
    window.logged++;
    this.#total.logged++;
    return true;
  }

  /** Report what is still held back and stop the sweeper. */
  close(): void {
    this.#endWindows(Number.POSITIVE_INFINITY);
  }

  #endWindows(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.start < this.#options.windowMs) continue;
      this.#windows.delete(key);
      if (window.suppressed > 0) this.#options.onSuppressed(key, window.suppressed, this.#options.windowMs);
    }
    if (this.#windows.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
