// The broadcast table's edits (twinframectl broadcast add, remove, start, stop):
// each is checked (clear errors before anything changes), written to the
// configuration file atomically like the other synchronized parameters
// (config/store.ts updateConfig), then applied to the running broadcasts. One
// edit at a time, so two operators cannot lose one another's change.

import { broadcastEntrySchema, type BroadcastConfig } from '../config/schema.js';
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

export class BroadcastTable {
  private edits: Promise<unknown> = Promise.resolve();

  constructor(private readonly manager: BroadcastManager, private readonly configPath: string | undefined, private readonly now: () => number = Date.now) {}

  list(): BroadcastView[] {
    return this.manager.list();
  }

  /** Add a broadcast; without `at` its schedule starts now (and that time is stored, so a restart resumes it). */
  add(args: BroadcastAddArgs): Promise<BroadcastView> {
    return this.edit(async () => {
      const parsed = broadcastEntrySchema.safeParse({ ...args, at: args.at ?? new Date(this.now()).toISOString() });
      if (!parsed.success) {
        throw new TwinframeError('TF_ADMIN_BAD_REQUEST', `broadcast ${args.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        });
      }
      const def = parsed.data;
      if (this.manager.get(def.name)) throw new TwinframeError('TF_BROADCAST_EXISTS', `a broadcast named '${def.name}' exists: remove it first`, { name: def.name });
      await this.manager.check(def);
      await this.commit([...this.manager.table(), def]);
      return this.view(def.name);
    });
  }

  remove(name: string): Promise<{ readonly name: string; readonly removed: true }> {
    return this.edit(async () => {
      requireBroadcast(this.manager, name);
      await this.commit(this.manager.table().filter((d) => d.name !== name));
      return { name, removed: true as const };
    });
  }

  /** start: running again, at the position its schedule says now; stop: kept, not sent. */
  setState(name: string, state: BroadcastConfig['state']): Promise<BroadcastView> {
    return this.edit(async () => {
      const def = { ...requireBroadcast(this.manager, name), state };
      if (state === 'running') await this.manager.check(def);
      // A running one that failed or ended is started again (at its schedule's position).
      await this.commit(this.manager.table().map((d) => (d.name === name ? def : d)), state === 'running' ? name : undefined);
      return this.view(name);
    });
  }

  private async commit(defs: BroadcastConfig[], restart?: string): Promise<void> {
    if (this.configPath !== undefined) await updateConfig(this.configPath, { broadcasts: defs });
    await this.manager.apply(defs, restart);
  }

  private view(name: string): BroadcastView {
    return this.manager.list().find((b) => b.name === name)!;
  }

  private edit<T>(run: () => Promise<T>): Promise<T> {
    const next = this.edits.catch(() => undefined).then(run);
    this.edits = next;
    return next;
  }
}
