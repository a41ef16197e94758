// A Prometheus histogram whose buckets are counted elsewhere: the data paths
// count their send batches per lateness bucket in the control block, and a
// scrape reads those words. prom-client's Histogram only counts its own
// observe() calls, so this one replaces what it reports (get) with the counts
// its `read` callback returns at scrape time. Bounds and counts are per bucket
// (not cumulative); the cumulative `le` series, _sum and _count are built here.

import { Histogram, type LabelValues, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

/** One label set's buckets: counts[i] observations ≤ bounds[i] (and > bounds[i-1]); counts[bounds.length]: the rest. */
export interface BucketCounts<T extends string> {
  readonly labels: LabelValues<T>;
  readonly counts: readonly number[];
  readonly sum: number;
}

export class SharedHistogram<T extends string> extends Histogram<T> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #read: () => BucketCounts<T>[];

  constructor(options: {
    name: string; help: string; labelNames: readonly T[]; bounds: readonly number[]; registry: Registry; read: () => BucketCounts<T>[];
  }) {
    super({ name: options.name, help: options.help, labelNames: options.labelNames, buckets: [...options.bounds], registers: [options.registry] });
    this.#name = options.name;
    this.#help = options.help;
    this.#bounds = options.bounds;
    this.#read = options.read;
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const values: MetricValueWithName<T>[] = [];
    for (const { labels, counts, sum } of this.#read()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += counts[i];
        values.push({ metricName: `${this.#name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
      });
      cumulative += counts[this.#bounds.length];
      values.push({ metricName: `${this.#name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${this.#name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: cumulative });
    }
    // prom-client's typings declare `type` a numeric enum it never exports; at run time it is the string.
    const type = 'histogram' as unknown as MetricObjectWithValues<MetricValueWithName<T>>['type'];
    return Promise.resolve({ name: this.#name, help: this.#help, type, values, aggregator: 'sum', collect: () => {} });
  }

  /** The registry prefers this to get() when a metric has it (prom-client's Histogram does). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    return this.get();
  }
}
