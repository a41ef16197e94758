// Warms the send path of a fresh data path. A standby prepares every datagram
// but never sends one, so the first send after a takeover would run Node's dgram
// code cold (interpreted, inline caches empty) — measured at ~1 ms late for that
// first datagram while the ones after it were on time. Sending a burst through a
// throwaway socket connected to itself, with the same call shape as a session's
// send, gets that code compiled before the path may take over.

import { createSocket } from 'node:dgram';
import { RTP_HEADER_BYTES, TS_PAYLOAD_BYTES } from '../rtp/packetizer.js';

export async function warmUpSendPath(datagrams = 1000): Promise<void> {
  const socket = createSocket({ type: 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => socket.connect(socket.address().port, '127.0.0.1', () => resolve()));
    });
    socket.setRecvBufferSize(4096); // nobody reads these; let the kernel drop them
    const buf = Buffer.alloc(RTP_HEADER_BYTES + TS_PAYLOAD_BYTES);
    for (let i = 0; i < datagrams; i++) {
      if (socket.getSendQueueCount() < 32) socket.send(buf, 0, buf.length);
    }
  } catch {
    // Warming is an optimisation: a path that cannot warm up still works.
  } finally {
    socket.close();
  }
}
