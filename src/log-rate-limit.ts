// A bound on how many lines one source (a client address) may put in the log: a
// flood of bad requests must not become a flood of log lines. Lines are keyed by
// source and kind (e.g. the reply's status), so one kind flooding does not hide
// another: each key may log `perKey` lines per window, and all keys together
// `total`; what is over is counted, not logged, and once the window in which
// lines were suppressed is over, `onSuppressed` is called once for the key with
// the count (the caller logs one summary line). Windows are fixed, per key, from
// the key's first line.

export interface LogRateLimitOptions {
  /** Lines one key may log per window. */
  readonly perKey: number;
  /** Lines all keys together may log per window. */
  readonly total: number;
  readonly windowMs: number;
  /** Called after a window in which `source` had `suppressed` lines of `kind` held back. */
  readonly onSuppressed: (source: string, kind: string, suppressed: number, windowMs: number) => void;
  /** The clock, for tests; default performance.now. */
  readonly now?: () => number;
}

interface Window {
  readonly source: string;
  readonly kind: string;
  start: number;
  logged: number;
  suppressed: number;
}

export class LogRateLimit {
  readonly #options: LogRateLimitOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  #total = { start: Number.NEGATIVE_INFINITY, logged: 0 };
  /** Ends windows (and reports) while any is open, so a flood that stops is still summed up. */
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: LogRateLimitOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** May a line of `kind` from `source` be logged now? A false answer is counted for the summary. */
  allow(source: string, kind: string | number): boolean {
    const now = this.#now();
    this.#endWindows(now);
    const key = `${source}\u0000${kind}`;
    let window = this.#windows.get(key);
    if (window === undefined) {
      window = { source, kind: String(kind), start: now, logged: 0, suppressed: 0 };
      this.#windows.set(key, window);
      this.#sweeper ??= setInterval(() => this.#endWindows(this.#now()), this.#options.windowMs).unref();
    }
    if (now - this.#total.start >= this.#options.windowMs) this.#total = { start: now, logged: 0 };
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
      if (window.suppressed > 0) this.#options.onSuppressed(window.source, window.kind, window.suppressed, this.#options.windowMs);
    }
    if (this.#windows.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
