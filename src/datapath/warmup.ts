// Warms the send path of a fresh data path. A standby prepares every datagram
// but never sends one, so the first send after a takeover would run the send
// code cold (interpreted, inline caches empty) — measured at ~1 ms late for that
// first datagram while the ones after it were on time. Sending bursts through a
// throwaway socket, with the same calls as a session's send (the turn's batch
// through the addon, or Node's dgram send without it), gets that code compiled
// before the path may take over. Nobody reads what it sends: the sink socket is
// connected to itself, so the kernel drops the addon's datagrams (and answers
// with port unreachable, which the warm-up ignores).

import { createSocket, type Socket } from 'node:dgram';
import { RTP_HEADER_BYTES, TS_PAYLOAD_BYTES } from '../rtp/packetizer.js';
import { nativeSender, SendBatch } from './send-batch.js';

/** Datagrams per warm-up batch, as a busy turn would hold. */
const WARM_BATCH = 8;

export async function warmUpSendPath(datagrams = 1000): Promise<void> {
  const socket = createSocket({ type: 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => socket.connect(socket.address().port, '127.0.0.1', () => resolve()));
    });
    socket.setRecvBufferSize(4096); // nobody reads these; let the kernel drop them
    const buf = Buffer.alloc(RTP_HEADER_BYTES + TS_PAYLOAD_BYTES);
    if (nativeSender) warmUpNative(nativeSender, socket, buf, datagrams);
    else {
      for (let i = 0; i < datagrams; i++) {
        if (socket.getSendQueueCount() < 32) socket.send(buf, 0, buf.length);
      }
    }
  } catch {
    // Warming is an optimisation: a path that cannot warm up still works.
  } finally {
    socket.close();
  }
}

/** The addon's batched send, through a native socket sending to the sink. */
function warmUpNative(addon: NonNullable<typeof nativeSender>, sink: Socket, buf: Buffer, datagrams: number): void {
  const fd = addon.udpOpen('127.0.0.1', 0);
  if (fd < 0) return;
  try {
    if (addon.udpConnect(fd, '127.0.0.1', sink.address().port) !== 0) return;
    const target = { fd, sendDgram: (): number => 0 };
    const batch = new SendBatch<typeof target>();
    for (let sent = 0; sent < datagrams; sent += WARM_BATCH) {
      batch.openRun(target, 0, 0);
      for (let i = 0; i < WARM_BATCH; i++) batch.add(buf, buf.length);
      batch.send();
      batch.clear();
    }
  } finally {
    addon.udpClose(fd);
  }
}
