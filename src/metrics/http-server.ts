// The metrics listener (metrics.listen): GET /metrics for Prometheus, GET /healthz
// for probes (200 while every pair has a path that can send, 503 otherwise, with
// the per-pair verdict as JSON). Nothing else: 404, and 405 for other methods.
// It runs on the main thread like the RTSP server; a scrape reads shared
// counters and never reaches the data paths.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Health } from './health.js';

export interface MetricsEndpoints {
  metrics(): Promise<string>;
  readonly contentType: string;
  health(): Health;
}

/** A scrape that takes longer than this is cut off (a stalled client must not hold a socket). */
const REQUEST_TIMEOUT_MS = 10_000;

export class MetricsServer {
  readonly #server: http.Server;
  readonly #log: Logger;

  constructor(endpoints: MetricsEndpoints, logger: Logger) {
    this.#log = logger;
    this.#server = http.createServer((req, res) => {
      this.#handle(endpoints, req, res).catch((err: Error) => {
        this.#log.error({ err: err.message, url: req.url }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.#server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.#server.on('error', (err) => this.#log.error({ err: err.message }, 'metrics listener error'));
  }

  /** Start listening; resolves with the bound address (port 0 becomes the real port). */
  async listen(host: string, port: number): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.address();
    this.#log.info({ host: bound.address, port: bound.port }, 'metrics listening (GET /metrics, GET /healthz)');
    return bound;
  }

  address(): { address: string; port: number } {
    const a = this.#server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(endpoints: MetricsEndpoints, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    if (path !== '/metrics' && path !== '/healthz') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: GET /metrics or /healthz\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const verdict = endpoints.health();
      res.writeHead(verdict.healthy ? 200 : 503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(verdict) + '\n');
      return;
    }
    const body = await endpoints.metrics();
    res.writeHead(200, { 'Content-Type': endpoints.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
