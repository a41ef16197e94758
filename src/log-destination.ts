// The log's destination: a pino stream that can never stop the server, whatever
// happens to the file it writes to (full disk, closed or stalled pipe).
//
// Why not pino.destination (sonic-boom): on a write error it keeps the failed bytes
// and writes them again with the next line, re-emits the error with no listener (an
// uncaught exception), and pino flushes it at exit with flushSync, which sleeps and
// retries any error but EAGAIN forever, with SIGTERM never handled. This stream is
// small enough to be seen to be bounded:
// - one write in flight at a time, always asynchronous (the event loop never waits);
// - lines logged meanwhile queue up to MAX_QUEUED_CHARS; beyond it they are dropped;
// - a failed write is dropped, never written again; only EAGAIN/EBUSY (a non-blocking
//   pipe whose reader is busy: Node makes a piped stderr non-blocking) is tried again,
//   RETRY_DELAY_MS apart and at most MAX_RETRIES times;
// - write() and every callback catch what they call, so nothing here throws.
// Dropped lines are counted; after the next successful write onRecovered is called
// once with the count and the first error, and the count starts again from zero.

/** Writes bytes somewhere (e.g. fs.write on a file descriptor) and reports how many went out. */
export type WriteChunk = (chunk: Buffer, done: (err: NodeJS.ErrnoException | null, written: number) => void) => void;

const MAX_QUEUED_CHARS = 1024 * 1024;
const MAX_RETRIES = 20;
const RETRY_DELAY_MS = 50;
const NEWLINE = 0x0a;

export interface DroppingDestinationOptions {
  readonly write: WriteChunk;
  /** Called after a successful write when lines were dropped before it. */
  readonly onRecovered: (dropped: number, firstError: string) => void;
}

export class DroppingDestination {
  readonly #write: WriteChunk;
  readonly #onRecovered: (dropped: number, firstError: string) => void;
  #queue: string[] = [];
  #queuedChars = 0;
  #writing = false;
  /** The bytes written so far end inside a line (a write failed after a partial one). */
  #torn = false;
  #reporting = false;
  #dropped = 0;
  #firstError: string | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: DroppingDestinationOptions) {
    this.#write = options.write;
    this.#onRecovered = options.onRecovered;
  }

  /** pino calls this with one line (newline included). */
  write(line: string): void {
    // The report of dropped lines is let past the bound: it is one line, and it says what the bound cost.
    if (this.#queuedChars + line.length > MAX_QUEUED_CHARS && !this.#reporting) {
      this.#drop(1, 'backlog full');
      return;
    }
    this.#queue.push(line);
    this.#queuedChars += line.length;
    if (!this.#writing) this.#next();
  }

  /** logger.flush(cb): cb runs once everything logged so far has been written or dropped. */
  flush(cb: () => void): void {
    if (this.#writing) this.#idleWaiters.push(cb);
    else cb();
  }

  #next(): void {
    if (this.#queue.length === 0) {
      this.#writing = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const cb of waiters) cb();
      return;
    }
    this.#writing = true;
    // A line torn by a failed write is ended first, so the lines after it stay whole.
    const prefix = this.#torn ? '\n' : '';
    const chunk = Buffer.from(prefix + this.#queue.join(''));
    this.#queue = [];
    this.#queuedChars = 0;
    this.#send(chunk, 0, prefix.length);
  }

  /** `prefix`: leading bytes that end a torn line, not part of any logged line. */
  #send(chunk: Buffer, retries: number, prefix: number): void {
    const done = (err: NodeJS.ErrnoException | null, written: number): void => {
      if (err && (err.code === 'EAGAIN' || err.code === 'EBUSY') && retries < MAX_RETRIES) {
        setTimeout(() => this.#send(chunk, retries + 1, prefix), RETRY_DELAY_MS);
        return;
      }
      if (err || written <= 0) {
        // A write that makes no progress would otherwise be tried again without end.
        this.#drop(countLines(chunk) - prefix, err ? (err.code ?? err.message) : 'no bytes written');
        this.#next();
        return;
      }
      this.#torn = chunk[written - 1] !== NEWLINE;
      if (written < chunk.length) {
        this.#send(chunk.subarray(written), 0, 0);
        return;
      }
      if (this.#dropped > 0) this.#recovered();
      this.#next();
    };
    try {
      this.#write(chunk, done);
    } catch (err) {
      done(err as NodeJS.ErrnoException, 0);
    }
  }

  #drop(lines: number, reason: string): void {
    this.#dropped += lines;
    this.#firstError ??= reason;
  }

  #recovered(): void {
    const dropped = this.#dropped;
    const firstError = this.#firstError ?? 'unknown';
    this.#dropped = 0;
    this.#firstError = undefined;
    this.#reporting = true;
    try {
      this.#onRecovered(dropped, firstError);
    } catch {
      // Reporting is best effort; the count has been handed over either way.
    } finally {
      this.#reporting = false;
    }
  }
}

/** Lines in unwritten bytes: each pino line ends with a newline (a torn line's tail too). */
function countLines(chunk: Buffer): number {
  let lines = 0;
  for (let i = chunk.indexOf(NEWLINE); i >= 0; i = chunk.indexOf(NEWLINE, i + 1)) lines++;
  return lines;
}
