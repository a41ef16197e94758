// The broadcast table's edits (twinframectl broadcast add, remove, start, stop):
// each is checked (clear errors before anything changes), written to the
// configuration file atomically like the other synchronized parameters
// (config/store.ts updateConfig), then applied to the running broadcasts.
//
// An edit changes one row. In the file it rewrites that row alone: rows written
// there by hand and not reloaded yet stay as they are (the next reload applies
// them); an edit of a row that differs there from the running one (edited or
// removed by hand since the last reload) is refused with TF_BROADCAST_FILE_CHANGED,
// naming what differs, rather than guessing which of the two the operator wants.
//
// Edits, reloads and the table's first apply run one at a time on one queue: a
// reload reads the file and applies it with no edit in between, and an edit
// sees the running table a reload left, so neither undoes the other.

import { parseConfig, broadcastEntrySchema, type BroadcastConfig } from '../config/schema.js';
import { updateConfig } from '../config/store.js';
import { TwinframeError } from '../errors.js';
import { requireBroadcast, type BroadcastManager, type BroadcastView } from './manager.js';

/** What `broadcast add` names; unchecked (the table checks it). */
export interface BroadcastAddArgs {
  readonly name: string;
  readonly asset: string;
  readonly to: string;
  readonly at?: string;
  readonly loop?: boolean;
  readonly transport?: 'rtp' | 'udp';
  readonly ttl?: number;
  readonly state?: 'running' | 'stopped';
}

/** One row edit: the running table after it, and the file's rows after it (given the file's rows as read). */
interface RowEdit {
  readonly name: string;
  readonly running: BroadcastConfig[];
  readonly file: (rows: readonly FileRow[]) => unknown[];
  /** A running broadcast started again even if unchanged (start of a failed one). */
  readonly restart?: string;
  /** The row must still be in the file (start, stop: not removed there by hand). */
  readonly inFile?: boolean;
}

/** A row of the file's `broadcasts`: as written (`raw`, defaults left out) and as parsed. */
interface FileRow {
  readonly raw: unknown;
  readonly def: BroadcastConfig;
}

export class BroadcastTable {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly manager: BroadcastManager, private readonly configPath: string | undefined, private readonly now: () => number = Date.now) {}

  list(): BroadcastView[] {
    return this.manager.list();
  }

  /** Add a broadcast; without `at` its schedule starts now (and that time is stored, so a restart resumes it). */
  add(args: BroadcastAddArgs): Promise<BroadcastView> {
    return this.serialized(async (after) => {
      this.manager.requireSending();
      const parsed = broadcastEntrySchema.safeParse({ ...args, at: args.at ?? new Date(this.now()).toISOString() });
      if (!parsed.success) {
        throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `broadcast ${args.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        });
      }
      const def = parsed.data;
      if (this.manager.get(def.name)) throw new TwinframeError('TF_BROADCAST_EXISTS', `a broadcast named '${def.name}' exists: remove it first`, { name: def.name });
      await this.manager.check(def);
      await this.commit({ name: def.name, running: [...this.manager.table(), def], file: (rows) => [...rows.map((r) => r.raw), def] }, after);
      return this.view(def.name);
    });
  }

  remove(name: string): Promise<{ readonly name: string; readonly removed: true }> {
    return this.serialized(async (after) => {
      this.manager.requireSending();
      requireBroadcast(this.manager, name);
      // Gone from the file already (removed by hand): the running table follows it.
      await this.commit({ name, running: this.manager.table().filter((d) => d.name !== name), file: (rows) => rows.filter((r) => r.def.name !== name).map((r) => r.raw) }, after);
      return { name, removed: true as const };
    });
  }

  /** start: running again, at the position its schedule says now; stop: kept, not sent. */
  setState(name: string, state: BroadcastConfig['state']): Promise<BroadcastView> {
    return this.serialized(async (after) => {
      this.manager.requireSending();
      const def = { ...requireBroadcast(this.manager, name), state };
      if (state === 'running') await this.manager.check(def);
      await this.commit({
        name,
        running: this.manager.table().map((d) => (d.name === name ? def : d)),
        file: (rows) => rows.map((r) => (r.def.name === name ? { ...(r.raw as Record<string, unknown>), state } : r.raw)),
        // A running one that failed or ended is started again (at its schedule's position).
        ...(state === 'running' ? { restart: name } : {}),
        inFile: true,
      }, after);
      return this.view(name);
    });
  }

  /** The table from the configuration at start: applied on the queue, before any edit. Resolves once each start has an outcome. */
  start(defs: readonly BroadcastConfig[]): Promise<void> {
    return this.serialized(() => this.manager.apply(defs));
  }

  /** A reload (`run`: read the file, apply what changed) with no edit in between; its broadcast changes go to `after`. */
  reload<T>(run: (after: (work: Promise<unknown>) => void) => Promise<T>): Promise<T> {
    return this.serialized(run);
  }

  private async commit(edit: RowEdit, after: (work: Promise<unknown>) => void): Promise<void> {
    if (this.configPath !== undefined) {
      await updateConfig(this.configPath, (raw) => {
        const rows = fileRows(raw, this.configPath!);
        this.checkFileRow(edit, rows);
        return { broadcasts: edit.file(rows) as BroadcastConfig[] };
      });
    }
    const applied = this.manager.apply(edit.running, edit.restart);
    after(applied); // the queue waits for its outcome; the reply does not wait for a loop plan's read
    await this.manager.untilPreparing(edit.name, applied);
  }

  /** Refuse an edit of a row that the file has changed since the last reload (a row added there is not applied yet either). */
  private checkFileRow(edit: RowEdit, rows: readonly FileRow[]): void {
    const { name } = edit;
    const running = this.manager.get(name);
    const inFile = rows.find((r) => r.def.name === name)?.def;
    const hint = 'reload to apply the file first, or undo that change in the file';
    if (running === undefined && inFile !== undefined) {
      throw new TwinframeError('TF_BROADCAST_FILE_CHANGED', `broadcast '${name}' is in the configuration file ${this.configPath} but not in the running table: it was written there since the last reload; ${hint}`, { name });
    }
    if (running !== undefined && inFile === undefined && edit.inFile === true) {
      throw new TwinframeError('TF_BROADCAST_FILE_CHANGED', `broadcast '${name}' is no longer in the configuration file ${this.configPath}: it was removed there since the last reload; ${hint}`, { name });
    }
    if (running === undefined || inFile === undefined) return; // an add; or a remove of a row already gone from the file
    const fields = [...new Set([...Object.keys(running), ...Object.keys(inFile)])]
      .filter((k) => JSON.stringify(running[k as keyof BroadcastConfig]) !== JSON.stringify(inFile[k as keyof BroadcastConfig]));
    if (fields.length > 0) {
      throw new TwinframeError('TF_BROADCAST_FILE_CHANGED', `broadcast '${name}' differs in the configuration file ${this.configPath} from the running one (${fields.map((f) => `${f}: file ${JSON.stringify(inFile[f as keyof BroadcastConfig]) ?? 'unset'}, running ${JSON.stringify(running[f as keyof BroadcastConfig]) ?? 'unset'}`).join('; ')}): it was edited there since the last reload; ${hint}`, { name, fields });
    }
  }

  private view(name: string): BroadcastView {
    return this.manager.list().find((b) => b.name === name)!;
  }

  /**
   * Run `run` once every edit, reload and apply queued before it is done. What
   * it hands to `after` (the broadcasts' starts) holds the queue until settled,
   * so the next one sees their outcome; `run`'s caller does not wait for it.
   */
  private serialized<T>(run: (after: (work: Promise<unknown>) => void) => Promise<T>): Promise<T> {
    const pending: Array<Promise<unknown>> = [];
    const result = this.queue.catch(() => undefined).then(() => run((work) => pending.push(work)));
    const settled = (): Promise<unknown> => Promise.all(pending.map((p) => p.catch(() => undefined)));
    this.queue = result.then(settled, settled);
    return result;
  }
}

/** The file's broadcast rows, as written and as parsed (the file as a whole must be valid). */
function fileRows(raw: Readonly<Record<string, unknown>>, file: string): FileRow[] {
  const defs = parseConfig(raw, `configuration ${file}`).broadcasts;
  const written = Array.isArray(raw.broadcasts) ? raw.broadcasts as unknown[] : [];
  return defs.map((def, i) => ({ raw: written[i], def }));
}
