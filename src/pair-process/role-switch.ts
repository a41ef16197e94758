// An operator's lossless role switch of the two processes of a pair, the
// primary's half: stop sending at a batch boundary, then let go of the life
// lock, which the standby's takeover thread is waiting on: it moves every
// session to this process's last cursor and takes sending at once, as in any
// takeover, but from cursors that no longer move. Nothing is lost or repeated:
// a data path checks ACTIVE right before each send (its fence), so once ACTIVE
// names nobody only a send that passed its fence before can still leave, and
// its session's send claim is held from before the hold until its cursor moved
// past it. Waiting until every claim was seen free once is waiting for those.

import type { Engine } from '../engine/engine.js';
import { TwinframeError } from '../errors.js';
import { monoNowMs } from '../shared/clock.js';
import type { HeldLifeLock } from './native-life-lock.js';

/** Sends in flight settle in microseconds; a claim held longer belongs to a path stuck in its send (it would be sent again by the standby: refuse instead). */
const SETTLE_TIMEOUT_MS = 200;

/** What the operator's command answers. */
export interface RoleSwitchResult {
  /** This process's role after the switch. */
  readonly role: 'primary' | 'standby';
  /** The other process. */
  readonly peerPid: number | null;
  readonly sessions: number;
  /** The primary's hold → its last send settled, ms (the handing-over process's figure). */
  readonly settleMs: number | null;
  /** The standby's notice → sending switched, ms (the taking-over process's figure). */
  readonly switchMs: number | null;
}

/** TF_PAIR_SWITCH while a session has RTP on its RTSP connection: only this process holds it. Checked before anything stops. */
export function refuseInterleaved(engine: Engine): void {
  if (engine.listSessions().some((s) => s.interleaved)) {
    throw new TwinframeError('TF_PAIR_SWITCH', 'a session has RTP on its RTSP connection, which only this process holds: it cannot move');
  }
}

/** Stop this process's sending at a batch boundary and hand it to the standby waiting on `lifeLock`. Resolves with the settle time, ms. */
export async function handOverSending(engine: Engine, lifeLock: HeldLifeLock): Promise<number> {
  const sessions = engine.listSessions();
  const started = monoNowMs();
  engine.holdSending();
  const pending = new Set(sessions);
  while (pending.size > 0) {
    for (const s of pending) if (engine.controlBlock(s.pair).claimHolder(s.slot) === 0) pending.delete(s);
    if (pending.size === 0) break;
    if (monoNowMs() - started > SETTLE_TIMEOUT_MS) {
      engine.takeOver([]); // sending back to this process's paths
      throw new TwinframeError('TF_PAIR_SWITCH', `a send of ${pending.size} session(s) did not settle in ${SETTLE_TIMEOUT_MS} ms; this process sends on`);
    }
    Atomics.wait(SPIN, 0, 0, 0.05);
  }
  const settleMs = monoNowMs() - started;
  await lifeLock.release();
  return settleMs;
}

const SPIN = new Int32Array(new SharedArrayBuffer(4));
