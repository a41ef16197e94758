// --scrape-ms: scrape twinframe's GET /metrics every N ms during a phase's window,
// from the bench process (its CPU is not the server's), to measure what metrics
// cost the server. Each scrape waits for the previous one: a slow answer delays
// the next scrape, it never piles scrapes up.

import { sleep } from '../lib.js';

export interface ScrapeFigures {
  readonly everyMs: number;
  readonly scrapes: number;
  readonly failed: number;
  /** The first failure's message. */
  readonly firstError: string | undefined;
  /** Round trip of one scrape, ms: median and largest. */
  readonly p50Ms: number;
  readonly maxMs: number;
  /** Size of the last exposition, bytes. */
  readonly bytes: number;
}

const SCRAPE_TIMEOUT_MS = 5000;

export class Scraper {
  readonly #url: string;
  readonly #everyMs: number;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #times: number[] = [];
  #failed = 0;
  #firstError: string | undefined;
  #bytes = 0;

  constructor(url: string, everyMs: number) {
    this.#url = url;
    this.#everyMs = everyMs;
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        const t0 = performance.now();
        try {
          const res = await fetch(this.#url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
          const text = await res.text();
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          this.#bytes = text.length;
          this.#times.push(performance.now() - t0);
        } catch (err) {
          this.#failed++;
          this.#firstError ??= (err as Error).message;
        }
        await sleep(Math.max(0, this.#everyMs - (performance.now() - t0)));
      }
    })();
  }

  async stop(): Promise<ScrapeFigures> {
    this.#stopped = true;
    await this.#loop;
    const sorted = [...this.#times].sort((a, b) => a - b);
    return {
      everyMs: this.#everyMs, scrapes: sorted.length, failed: this.#failed, firstError: this.#firstError,
      p50Ms: sorted.length ? sorted[Math.ceil(sorted.length / 2) - 1] : Number.NaN, maxMs: sorted.length ? sorted[sorted.length - 1] : Number.NaN, bytes: this.#bytes,
    };
  }
}
