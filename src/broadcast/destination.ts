// Where a broadcast may go: the rules a viewer's destination meets (rtsp/server.ts),
// for a destination an operator names. IPv4 only (the data paths' sockets are
// udp4); never 0.0.0.0/8, the limited broadcast address or 240/4. A multicast
// group (224/4) is for viewers to join. A unicast destination other than this
// host is a "foreign" one: allowed only with rtsp.allowForeignDestination, the
// switch that keeps a stream from being aimed at a third party. Then the
// stream address must have a route to it (ports.ts probeRoute).

import { isMulticastGroup } from '../shared/commands.js';
import { networkInterfaces } from 'node:os';
import { TwinframeError } from '../errors.js';
import { probeRoute } from '../engine/ports.js';

export type DestinationKind = 'unicast' | 'multicast';

export interface DestinationRules {
  readonly allowForeignDestination: boolean;
  /** The media's source address (network.streamIp, else the engine's). */
  readonly streamAddress: string;
}

/** Refused with TF_BROADCAST_DESTINATION when the server may not send there; else its kind. */
export async function checkDestination(destination: { readonly address: string; readonly port: number }, rules: DestinationRules): Promise<DestinationKind> {
  const { address } = destination;
  const first = Number(address.split('.')[0]);
  const refuse = (why: string): never => {
    throw new TwinframeError('TF_BROADCAST_DESTINATION', `cannot broadcast to ${address}:${destination.port}: ${why}`, { destination: address, port: destination.port });
  };
  if (first === 0 || first >= 240) refuse('not a unicast or multicast address');
  if (isMulticastGroup(address)) return 'multicast';
  if (!rules.allowForeignDestination && !isOwnAddress(address)) {
    refuse('not an address of this host, and rtsp.allowForeignDestination is off');
  }
  try {
    await probeRoute(rules.streamAddress, destination);
  } catch (err) {
    refuse((err as Error).message);
  }
  return 'unicast';
}

/** 127/8, or an address of one of this host's interfaces. */
function isOwnAddress(address: string): boolean {
  if (address.startsWith('127.')) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv4' && i.address === address));
}
