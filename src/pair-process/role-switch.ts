// An operator's lossless role switch of the two processes of a pair, the
// primary's half: stop sending at a batch boundary, then let go of the life
// lock, which the standby's takeover thread is waiting on: it moves every
// session to this process's last cursor and takes sending at once, as in any
// takeover, but from cursors that no longer move. Nothing is lost or repeated:
// a data path checks ACTIVE right before each send (its fence), so once ACTIVE
// names nobody only a send that passed its fence before can still leave, and
// its session's send claim is held from before the hold until its cursor moved
// past it. Waiting until every claim was seen free once is waiting for those.
// RTP on an RTSP connection goes on in the same wire (shared-wires.ts): its
// WRITER word then names the other process, and once no thread here holds its
// lock, nothing here writes to it again (src/shared/wire.ts).

import type { Engine, SessionInfo } from '../engine/engine.js';
import { Wire, isForeignHolder, processLockSpace } from '../shared/wire.js';
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
  handOverWires(engine, sessions, started);
  const settleMs = monoNowMs() - started;
  await lifeLock.release();
  return settleMs;
}

/**
 * The wires of RTP on RTSP connections are the other process's to write from now
 * on: name it their writer, then wait until no thread here holds one (a data
 * path's flush of a full socket's backlog, µs). On a timeout this process sends on.
 */
function handOverWires(engine: Engine, sessions: readonly SessionInfo[], started: number): void {
  const own = processLockSpace();
  const wires = sessions.flatMap((s) => {
    const shared = engine.interleavedWire(s.id);
    return shared ? [new Wire(shared.wire)] : [];
  });
  // Handing: nobody writes and nobody takes a lock over until this process's threads let go
  // (a death meanwhile leaves them to the survivor's claim, which checks the tail).
  for (const wire of wires) wire.beginHandOver(own);
  const heldHere = (wire: Wire): boolean => wire.holder() !== 0 && !isForeignHolder(wire.holder(), own);
  while (wires.some(heldHere)) {
    if (monoNowMs() - started > SETTLE_TIMEOUT_MS) {
      for (const wire of wires) wire.handTo(own);
      engine.takeOver([]);
      throw new TwinframeError('TF_PAIR_SWITCH', `a wire of RTP on an RTSP connection stayed locked here for ${SETTLE_TIMEOUT_MS} ms; this process sends on`);
    }
    Atomics.wait(SPIN, 0, 0, 0.05);
  }
  for (const wire of wires) wire.handTo(own === 0 ? 1 : 0);
}

const SPIN = new Int32Array(new SharedArrayBuffer(4));
