// Taking a failed path out of service: claim the failure once, and if that path
// was sending, hand ACTIVE to its twin with one compare-and-swap — or to nobody
// when the twin is not online to take over. Called by the supervisor thread (the
// fast detector) and by the control plane (the backup, on worker 'exit').

import { ControlBlock } from '../shared/control-block.js';
import { partnerOf, type FailureCause, type PathId } from '../shared/layout.js';
import { monoNowMs } from '../shared/clock.js';
import type { FailureReport, StallEvidence } from '../shared/messages.js';

export function failPath(cb: ControlBlock, path: PathId, incarnation: number, cause: FailureCause, failedAtMs: number, stall?: StallEvidence): FailureReport | undefined {
  if (!cb.claimFailure(path, incarnation)) return undefined;
  const detectedAtMs = monoNowMs();
  const twin = partnerOf(path);
  let wasActive = false;
  let switchedTo: PathId | undefined;
  let switchedAtMs: number | undefined;
  for (;;) {
    const word = cb.activeWord();
    if (ControlBlock.ownerOf(word) !== path) break;
    wasActive = true;
    const next = cb.isOnline(twin) ? twin : undefined;
    if (cb.switchActive(word, next)) {
      switchedTo = next;
      switchedAtMs = monoNowMs();
      break;
    }
  }
  const faultStart = cb.faultStartMs(path);
  return {
    path,
    incarnation,
    cause,
    // An injected fault stamps its start; prefer it when it belongs to this failure.
    failedAtMs: faultStart > 0 && faultStart <= failedAtMs ? faultStart : failedAtMs,
    detectedAtMs,
    switchedAtMs,
    switchedTo,
    wasActive,
    epoch: ControlBlock.epochOf(cb.activeWord()),
    stall,
  };
}
