// Where a broadcast may go: the rules a viewer's destination meets (rtsp/server.ts),
// for a destination an operator names. IPv4 only (the data paths' sockets are
// udp4); never 0.0.0.0/8, the limited broadcast address or 240/4. A multicast
// group (224/4) is for viewers to join. A unicast destination other than this
// host is a "foreign" one: allowed only with rtsp.allowForeignDestination, the
// switch that keeps a stream from being aimed at a third party. Then the
// source address must have a route to it (ports.ts probeRoute).

import { isMulticastGroup } from '../shared/commands.js';
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { TwinframeError } from '../errors.js';
import { probeRoute } from '../engine/ports.js';

export type DestinationKind = 'unicast' | 'multicast';

export interface DestinationRules {
  readonly allowForeignDestination: boolean;
  /** network.streamIp: where every stream leaves from, when set. */
  readonly streamIp: string | undefined;
  /** multicast.interface: the address of a group's outgoing interface, when set. */
  readonly multicastInterface: string | undefined;
}

/** A destination the server may send to: its kind, and the address its datagrams leave from. */
export interface CheckedDestination {
  readonly kind: DestinationKind;
  readonly source: string;
}

/**
 * Refused with TF_BROADCAST_DESTINATION when the server may not send there; else
 * its kind and source: network.streamIp; else, for a group, multicast.interface;
 * else the address the kernel's route to the destination leaves by (a socket bound
 * to 127.0.0.1 would keep a group on this host).
 */
export async function checkDestination(destination: { readonly address: string; readonly port: number }, rules: DestinationRules): Promise<CheckedDestination> {
  const { address } = destination;
  const first = Number(address.split('.')[0]);
  const refuse = (why: string): never => {
    throw new TwinframeError('TF_BROADCAST_DESTINATION', `cannot broadcast to ${address}:${destination.port}: ${why}`, { destination: address, port: destination.port });
  };
  if (first === 0 || first >= 240) refuse('not a unicast or multicast address');
  const kind: DestinationKind = isMulticastGroup(address) ? 'multicast' : 'unicast';
  if (kind === 'unicast' && !rules.allowForeignDestination && !isOwnAddress(address)) {
    refuse('not an address of this host, and rtsp.allowForeignDestination is off');
  }
  let source = rules.streamIp ?? (kind === 'multicast' ? rules.multicastInterface : undefined);
  try {
    source ??= await routeSource(destination);
    // A group's own route check (TTL, interface) is the engine's, at open.
    if (kind === 'unicast') await probeRoute(source, destination);
  } catch (err) {
    refuse((err as Error).message);
  }
  return { kind, source: source! };
}

/** The source address the kernel picks for `destination` (connecting a UDP socket sends nothing). */
async function routeSource(destination: { readonly address: string; readonly port: number }): Promise<string> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(destination.port, destination.address, (err?: Error) => (err ? reject(err) : resolve()));
    });
    return socket.address().address;
  } catch (err) {
    throw new Error(`no route to ${destination.address} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    socket.close();
  }
}

/** 127/8, or an address of one of this host's interfaces. */
function isOwnAddress(address: string): boolean {
  if (address.startsWith('127.')) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv4' && i.address === address));
}
