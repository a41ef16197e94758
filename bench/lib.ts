// Shared by the benchmarks: nearest-rank quantiles, and the reader behind their
// `--flag value` options.

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]!;
}

/** Walks an argv array flag by flag; value() and number() take the flag's argument, with the usage text in every error. */
export class FlagReader {
  private index = -1;

  constructor(private readonly argv: readonly string[], private readonly usage: string) {}

  *flags(): Generator<string> {
    for (this.index = 0; this.index < this.argv.length; this.index++) yield this.argv[this.index]!;
  }

  value(flag: string): string {
    const v = this.argv[++this.index];
    if (v === undefined) throw new Error(`${flag} needs a value\n${this.usage}`);
    return v;
  }

  number(flag: string, options: { positive?: boolean } = {}): number {
    const v = Number(this.value(flag));
    if (!Number.isFinite(v) || (options.positive === true && v <= 0)) {
      throw new Error(`${flag} needs a ${options.positive === true ? 'positive ' : ''}number\n${this.usage}`);
    }
    return v;
  }
}
