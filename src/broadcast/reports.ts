// RTCP for an RTP broadcast (RFC 3550 §6): sender reports with the CNAME, from
// the broadcast session's RTCP port (its RTP source port + 1, as for a viewer's
// session) to the destination's port + 1, the group's or the one receiver's,
// so a receiver can map RTP time to wall-clock time; a BYE when it ends or is
// removed. Sent by the main thread, not the data paths: a failover does not
// interrupt them, and the stream's clock (the play's rtptime and start time)
// is the same whichever path sends.

import { hostname } from 'node:os';
import type { Engine, PlayResult } from '../engine/engine.js';
import { LOOP_PACKETS_PER_DATAGRAM, loopHeaderDatagrams, type LoopPlan } from '../mpegts/loop.js';
import { TS_PACKET_BYTES } from '../mpegts/packet.js';
import { rtpTimeAfter } from '../rtp/packetizer.js';
import { RtcpSender, type ReportSource } from '../rtsp/rtcp.js';
import { monoNowMs } from '../shared/clock.js';

export interface BroadcastReportsOptions {
  readonly engine: Engine;
  readonly sessionId: string;
  readonly play: PlayResult;
  readonly packetCount: number;
  readonly loop: LoopPlan | undefined;
  /** The session's source address and RTCP port. */
  readonly source: { readonly address: string; readonly port: number };
  /** The broadcast's destination, RTP port (reports go to the port above). */
  readonly destination: { readonly address: string; readonly port: number };
  readonly multicast: { readonly ttl: number; readonly interface?: string } | undefined;
}

const CNAME = `twinframe@${hostname()}`;

/** A broadcast's reports while it runs. */
export interface BroadcastReports {
  /** Stop: with `bye`, a last report and a BYE first (call it while the session still exists: the report counts what it sent). */
  end(bye: boolean): Promise<void>;
}

/** Start a broadcast's reports; rejects when its RTCP port cannot be bound. */
export async function startBroadcastReports(o: BroadcastReportsOptions): Promise<BroadcastReports> {
  const { ssrc } = o.engine.getSession(o.sessionId)!;
  const sender = await RtcpSender.open(o.source, { address: o.destination.address, port: o.destination.port + 1 }, ssrc, CNAME, () => {}, (socket) => {
    if (o.multicast === undefined) return;
    socket.setMulticastTTL(o.multicast.ttl);
    if (o.multicast.interface !== undefined) socket.setMulticastInterface(o.multicast.interface);
    socket.setMulticastLoopback(true); // as the data paths: receivers on this host hear the group
  });
  const source = reportSource(o);
  sender.start(source);
  return {
    end: async (bye) => {
      if (bye) await sender.bye(source); // resolves whatever happens: RTCP is advisory
      sender.close();
    },
  };
}

/** What a report says now: the RTP clock at this instant (RTP timestamps advance with send time, across loop points too) and what was sent. */
function reportSource(o: BroadcastReportsOptions): ReportSource {
  return () => {
    const info = o.engine.getSession(o.sessionId);
    const mono = monoNowMs();
    if (info === undefined || mono < o.play.startTimeMs) return undefined;
    return {
      wallMs: Date.now(),
      rtpTimestamp: rtpTimeAfter(o.play.rtptime, mono - o.play.startTimeMs),
      packetCount: info.sent,
      octetCount: broadcastOctets(o.packetCount, o.play.startPacket, o.loop, info.sent),
    };
  };
}

/**
 * Payload octets of a broadcast's first `sent` datagrams (src/mpegts/loop.ts's
 * placement): 7 TS packets each, but the last of each pass (and of the asset
 * without loop) carries what is left; loop header datagrams are whole.
 */
function broadcastOctets(packetCount: number, startPacket: number, loop: LoopPlan | undefined, sent: number): number {
  const per = LOOP_PACKETS_PER_DATAGRAM;
  const firstPass = Math.ceil((packetCount - startPacket) / per);
  if (loop === undefined || sent <= firstPass) return Math.min(sent * per, packetCount - startPacket) * TS_PACKET_BYTES;
  const headers = loopHeaderDatagrams(loop);
  const perPass = headers + Math.ceil(packetCount / per);
  const later = sent - firstPass;
  const passes = Math.floor(later / perPass);
  const rest = later - passes * perPass;
  const restPackets = rest <= headers ? rest * per : headers * per + Math.min((rest - headers) * per, packetCount);
  return (packetCount - startPacket + passes * (headers * per + packetCount) + restPackets) * TS_PACKET_BYTES;
}
