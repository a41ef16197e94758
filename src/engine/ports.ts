// Server port pairs for sessions: an even RTP port and the odd RTCP port above it,
// on the session's source address (its stream address). The control plane binds
// both (SO_REUSEADDR) for the session's lifetime so no other session is given
// them; each data path binds the RTP port again, with the same option, as the
// source of its own connected socket. And the check, before any of that, that
// the source address can reach the session's destination at all (a multicast
// group: through the interface the session sends it on).

import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { TwinframeError } from '../errors.js';
import { isMulticastGroup, type MulticastOutput } from '../shared/commands.js';

export interface PortPair {
  readonly address: string;
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** Let go of both ports (the sockets that hold them for the session). */
  release(): void;
}

/** Pairs probed with a bind (held by another process, or free) before a reservation gives up. */
const ATTEMPTS = 64;
/**
 * Pairs this process holds or is probing, by address and RTP port: skipped
 * without a probe, so a range nearly full of this server's own sessions still
 * finds its last free pair (a random start and linear probing cluster the held
 * pairs into runs longer than ATTEMPTS).
 */
const held = new Set<string>();

/**
 * Reserve an even/odd pair inside [range.first, range.last] (the patent's MPEG
 * ports), starting at a random pair so concurrent servers rarely collide.
 */
export async function reservePortPair(address: string, range: { first: number; last: number }): Promise<PortPair> {
  const pairs = Math.floor((range.last - range.first + 1) / 2);
  if (pairs < 1) throw new TwinframeError('TF_PORTS_EXHAUSTED', `server port range ${range.first}-${range.last} holds no even/odd pair`);
  const firstEven = range.first + (range.first % 2);
  let index = Math.floor(Math.random() * pairs);
  for (let seen = 0, attempt = 0; seen < pairs && attempt < ATTEMPTS; seen++, index = (index + 1) % pairs) {
    const rtpPort = firstEven + 2 * index;
    const key = `${address}:${rtpPort}`;
    if (rtpPort + 1 > range.last || held.has(key)) continue;
    attempt++;
    held.add(key); // before the first await: a concurrent reservation skips it
    const pair = await claimPair(address, rtpPort);
    if (!pair) {
      held.delete(key);
      continue;
    }
    return heldPair(address, rtpPort, pair);
  }
  throw new TwinframeError('TF_PORTS_EXHAUSTED', `no free even/odd UDP port pair in ${range.first}-${range.last} on ${address}`);
}

/**
 * Bind the pair a primary process holds for a session (SO_REUSEADDR, no
 * exclusive probe: it is taken, by design), so a standby process's data paths
 * send from the very same address and ports (src/pair-process).
 */
export async function adoptPortPair(address: string, rtpPort: number): Promise<PortPair> {
  const key = `${address}:${rtpPort}`;
  if (held.has(key)) throw new TwinframeError('TF_PORTS_EXHAUSTED', `server ports ${rtpPort}-${rtpPort + 1} on ${address} are held by a session of this process`);
  held.add(key);
  const rtp = await bindUdp(address, rtpPort, true);
  const rtcp = rtp && await bindUdp(address, rtpPort + 1, true);
  if (!rtp || !rtcp) {
    rtp?.close();
    held.delete(key);
    throw new TwinframeError('TF_PORTS_EXHAUSTED', `cannot bind server ports ${rtpPort}-${rtpPort + 1} on ${address} again`);
  }
  return heldPair(address, rtpPort, { rtp, rtcp });
}

/** A pair this process holds (its key in `held`) until released. */
function heldPair(address: string, rtpPort: number, sockets: { rtp: Socket; rtcp: Socket }): PortPair {
  let released = false;
  return {
    address,
    rtpPort,
    rtcpPort: rtpPort + 1,
    release() {
      if (released) return;
      released = true;
      held.delete(`${address}:${rtpPort}`);
      sockets.rtp.close();
      sockets.rtcp.close();
    },
  };
}

/** Bind both ports of a pair (SO_REUSEADDR) once exclusive binds show that nobody else holds them. */
async function claimPair(address: string, rtpPort: number): Promise<{ rtp: Socket; rtcp: Socket } | undefined> {
  // Other SO_REUSEADDR sockets could share a port silently, so first check that an
  // exclusive bind succeeds: then nobody else holds it.
  const probe = await bindUdp(address, rtpPort, false);
  if (!probe) return undefined;
  probe.close();
  const probeRtcp = await bindUdp(address, rtpPort + 1, false);
  if (!probeRtcp) return undefined;
  probeRtcp.close();
  const rtp = await bindUdp(address, rtpPort, true);
  if (!rtp) return undefined;
  const rtcp = await bindUdp(address, rtpPort + 1, true);
  if (!rtcp) {
    rtp.close();
    return undefined;
  }
  return { rtp, rtcp };
}

/**
 * Refuse a destination that `source` cannot send to (TF_RTSP_DESTINATION_UNREACHABLE,
 * RTSP 462), before a session exists: a UDP socket bound to `source` and
 * connect()ed to the destination asks the kernel for the route and sends nothing.
 * A loopback source cannot reach another host (EINVAL), a broadcast address needs
 * SO_BROADCAST (EACCES), an address nothing routes to gives ENETUNREACH, a source
 * that is not an address of this host EADDRNOTAVAIL, and port 0 ERR_SOCKET_BAD_PORT.
 * The data paths' sockets would meet the same error on every attempt.
 *
 * A multicast group is probed as the data paths send to it: IP_MULTICAST_IF set
 * first, so the route is looked up through that interface (an interface address
 * that is not this host's gives EADDRNOTAVAIL; a group with no route, ENETUNREACH).
 * `multicast` is given exactly when the destination is a group.
 */
export async function probeRoute(source: string, destination: { readonly address: string; readonly port: number }, multicast?: MulticastOutput): Promise<void> {
  checkMulticast(destination.address, multicast);
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: source, port: 0 }, () => {
        try {
          if (multicast?.interface !== undefined) socket.setMulticastInterface(multicast.interface);
          // Node 20 hands connect errors to this callback, not to 'error'.
          socket.connect(destination.port, destination.address, (err?: Error) => (err ? reject(err) : resolve()));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err))); // a port Node refuses outright (0), thrown synchronously
        }
      });
    });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TwinframeError('TF_RTSP_DESTINATION_UNREACHABLE', `stream address ${source} cannot reach ${destination.address}:${destination.port} (${reason})`, {
      source, destination: destination.address, reason,
    });
  } finally {
    socket.close();
  }
}

/** A group needs its multicast settings, and the settings a group: one without the other is a caller's mistake. */
function checkMulticast(address: string, multicast: MulticastOutput | undefined): void {
  const group = isMulticastGroup(address);
  if (group && multicast === undefined) {
    throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `${address} is a multicast group: only a broadcast sends to one`);
  }
  if (multicast === undefined) return;
  if (!group) throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `multicast delivery needs a group in 224.0.0.0/4, not ${address}`);
  if (!Number.isInteger(multicast.ttl) || multicast.ttl < 0 || multicast.ttl > 255) {
    throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `multicast ttl ${multicast.ttl} is not in 0..255`);
  }
  if (multicast.interface !== undefined && !isIPv4(multicast.interface)) {
    throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `multicast interface ${multicast.interface} is not an IPv4 address`);
  }
}

function bindUdp(address: string, port: number, reuseAddr: boolean): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: 'udp4', reuseAddr });
    const onError = () => { socket.close(); resolve(undefined); };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: false }, () => {
      socket.off('error', onError);
      // Drop anything that arrives; an unhandled 'error' must never take the server down.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}
