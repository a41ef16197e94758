// The one flag parser of the benchmarks: node:util parseArgs (strict: an unknown
// flag or a missing value is an error that shows the usage), plus --help / -h,
// and number checks with the flag's name and the usage in every error.

import { parseArgs } from 'node:util';

/** Each flag's kind: 'string' takes a value (`--faults 300` or `--faults=300`), 'boolean' does not. */
export type FlagSpec = Readonly<Record<string, 'string' | 'boolean'>>;

export class Flags {
  private constructor(private readonly values: Readonly<Record<string, string | boolean | undefined>>, private readonly usage: string) {}

  /** Parses `argv` against `spec`; prints `usage` and exits 0 on --help or -h. */
  static parse(argv: readonly string[], spec: FlagSpec, usage: string): Flags {
    const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
    for (const [name, type] of Object.entries(spec)) options[name] = { type };
    let values: Record<string, string | boolean | undefined>;
    try {
      values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${usage}`);
    }
    if (values.help === true) {
      console.log(usage);
      process.exit(0);
    }
    return new Flags(values, usage);
  }

  /** Whether the flag was given. */
  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** The flag's value as a finite number (positive if asked), or undefined when not given. */
  number(name: string, options: { positive?: boolean } = {}): number | undefined {
    const s = this.string(name);
    if (s === undefined) return undefined;
    const v = Number(s);
    if (s.trim() === '' || !Number.isFinite(v) || (options.positive === true && v <= 0)) {
      throw new Error(`--${name} needs a ${options.positive === true ? 'positive ' : ''}number\n${this.usage}`);
    }
    return v;
  }

  /** A comma-separated list (empty items dropped), or undefined when not given. */
  list(name: string): string[] | undefined {
    return this.string(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  }
}
