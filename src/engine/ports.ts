// Server port pairs for sessions: an even RTP port and the odd RTCP port above it.
// The control plane binds both (SO_REUSEADDR) for the session's lifetime so no
// other session is given them; each data path binds the RTP port again,
// with the same option, as the source of its own connected socket.

import { createSocket, type Socket } from 'node:dgram';
import { TwinframeError } from '../errors.js';

export interface PortPair {
  readonly address: string;
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** The control plane's RTCP socket (sender reports go out of it; receiver reports come in). */
  readonly rtcpSocket: Socket;
  release(): void;
}

const ATTEMPTS = 64;

export async function reservePortPair(address: string): Promise<PortPair> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // The kernel's port-0 choice may land on a port that other SO_REUSEADDR sockets
    // share, so probe for a truly free port with an exclusive socket first.
    const probe = await bindUdp(address, 0, false);
    if (!probe) continue;
    const rtpPort = probe.address().port;
    probe.close();
    if (rtpPort % 2 !== 0 || rtpPort === 65535) continue;
    const probeRtcp = await bindUdp(address, rtpPort + 1, false);
    if (!probeRtcp) continue;
    probeRtcp.close();
    const rtp = await bindUdp(address, rtpPort, true);
    if (!rtp) continue;
    const rtcp = await bindUdp(address, rtpPort + 1, true);
    if (!rtcp) {
      rtp.close();
      continue;
    }
    let released = false;
    return {
      address,
      rtpPort,
      rtcpPort: rtpPort + 1,
      rtcpSocket: rtcp,
      release() {
        if (released) return;
        released = true;
        rtp.close();
        rtcp.close();
      },
    };
  }
  throw new TwinframeError('TF_PORTS_EXHAUSTED', `no free even/odd UDP port pair on ${address} after ${ATTEMPTS} attempts`);
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
