// Seamless loops of a broadcast: the asset played again and again as one
// transport stream. Each pass after the first opens with *loop header*
// datagrams, one adaptation-field-only packet per PID of the asset:
//
//   discontinuity_indicator = 1 on every PID: its continuity counter may jump
//     (ISO/IEC 13818-1 2.4.3.5); the header packet carries the counter that makes
//     the asset's first packet of that PID continuous with it;
//   on the PCR PID also the PCR of the asset's packet 0: the new time base.
//
// so a demuxer (ffmpeg's mpegts.c resets its continuity check on the flag;
// GStreamer's tsdemux takes the new PCR as a new time base) sees one restart,
// not a stream of errors. The asset's own packets follow unchanged. Datagram d
// of a segment maps to a pass, and to a header datagram or asset packets, by
// pure arithmetic (placeLoopDatagram), so both data paths build the same bytes
// and a failover across a loop point is lossless. Its send time is the pass
// times the loop period plus the packet's send time: RTP timestamps and
// sequence numbers go on counting through every loop point.
//
// No allocation per datagram: the caller's LoopPlace is filled in.

import { PID_NULL, TS_PACKET_BYTES, TS_SYNC_BYTE, encodePcr, packetPcr } from './packet.js';
import { SectionAssembler, isPsiError, parsePat, parsePmt } from './psi.js';

export const LOOP_PACKETS_PER_DATAGRAM = 7;

/** What the loop header announces, found once by scanning the asset (LoopScanner). */
export interface LoopProgram {
  /** The asset's PIDs a player follows, ascending: its PSI/SI (0x00-0x1F), its PMTs, and the PIDs they declare (streams, PCR). */
  readonly pids: readonly number[];
  /** Per PID: the continuity counter of its header packet (the asset's first packet of that PID continues it). */
  readonly headerCc: readonly number[];
  /** The PCR PID, and the PCR of the asset's packet 0 (27 MHz units; -1: the asset has no PCR). */
  readonly pcrPid: number;
  readonly pcr27: number;
}

/** A looping session's plan: identical on both paths (it travels in the open command). */
export interface LoopPlan extends LoopProgram {
  readonly packetCount: number;
  /** One pass, 90 kHz ticks: the last packet's send time plus one packet's duration. */
  readonly periodTicks: number;
}

/** Where datagram d of a looping segment is (written by placeLoopDatagram). */
export interface LoopPlace {
  /** 0 for the segment's first (partial) pass from its start packet, then 1, 2, … */
  pass: number;
  /** The loop header datagram's number within its pass (0 …), or -1: asset packets. */
  header: number;
  /** First asset packet of the datagram (asset datagrams). */
  first: number;
  /** Asset packets in it (the pass's last datagram may hold fewer than 7). */
  count: number;
}

export function newLoopPlace(): LoopPlace {
  return { pass: 0, header: -1, first: 0, count: 0 };
}

/** Header datagrams at the start of every pass after the first. */
export function loopHeaderDatagrams(plan: LoopProgram): number {
  return Math.max(1, Math.ceil(plan.pids.length / LOOP_PACKETS_PER_DATAGRAM));
}

/**
 * Datagram `d` of a segment that started at `startPacket`: the first pass runs
 * from there to the asset's end; each later pass is the header datagrams, then
 * the whole asset.
 */
export function placeLoopDatagram(plan: LoopPlan, startPacket: number, d: number, out: LoopPlace): void {
  const n = plan.packetCount;
  const firstPass = Math.ceil((n - startPacket) / LOOP_PACKETS_PER_DATAGRAM);
  if (d < firstPass) {
    out.pass = 0;
    out.header = -1;
    out.first = startPacket + LOOP_PACKETS_PER_DATAGRAM * d;
  } else {
    const headers = loopHeaderDatagrams(plan);
    const perPass = headers + Math.ceil(n / LOOP_PACKETS_PER_DATAGRAM);
    const e = d - firstPass;
    out.pass = 1 + Math.floor(e / perPass);
    const r = e - (out.pass - 1) * perPass;
    out.header = r < headers ? r : -1;
    out.first = r < headers ? 0 : LOOP_PACKETS_PER_DATAGRAM * (r - headers);
  }
  out.count = out.header >= 0 ? LOOP_PACKETS_PER_DATAGRAM : Math.min(LOOP_PACKETS_PER_DATAGRAM, n - out.first);
}

/**
 * The send time of a placed datagram, ticks after the segment's start packet:
 * `packetTicks` is the send time of its first asset packet (packet 0 for a
 * header datagram: it goes just before the pass's first packet).
 */
export function loopElapsedTicks(plan: LoopPlan, place: LoopPlace, packetTicks: number, startTicks: number): number {
  return place.pass * plan.periodTicks + packetTicks - startTicks;
}

/** The asset packet a placed datagram stands for (a header datagram: the pass's packet 0). */
export function loopPacket(place: LoopPlace): number {
  return place.header >= 0 ? 0 : place.first;
}

/** Writes loop header datagram `header` (7 packets) at out[at..]. */
export function buildLoopHeaderDatagram(plan: LoopProgram, header: number, out: Uint8Array, at: number): void {
  for (let i = 0; i < LOOP_PACKETS_PER_DATAGRAM; i++) {
    const k = header * LOOP_PACKETS_PER_DATAGRAM + i;
    const o = at + i * TS_PACKET_BYTES;
    if (k < plan.pids.length) {
      const pid = plan.pids[k];
      writeDiscontinuityPacket(pid, plan.headerCc[k], pid === plan.pcrPid ? plan.pcr27 : -1, out, o);
    } else {
      writeNull(out, o);
    }
  }
}

/** An adaptation-field-only packet with discontinuity_indicator set, and the PCR when pcr27 ≥ 0. */
function writeDiscontinuityPacket(pid: number, cc: number, pcr27: number, out: Uint8Array, o: number): void {
  out[o] = TS_SYNC_BYTE;
  out[o + 1] = (pid >> 8) & 0x1f;
  out[o + 2] = pid & 0xff;
  out[o + 3] = 0x20 | (cc & 0x0f); // adaptation field only
  out[o + 4] = TS_PACKET_BYTES - 5; // adaptation_field_length: the rest of the packet
  if (pcr27 >= 0) {
    out[o + 5] = 0x80 | 0x10; // discontinuity, PCR
    encodePcr(pcr27, out, o + 6);
    out.fill(0xff, o + 12, o + TS_PACKET_BYTES);
  } else {
    out[o + 5] = 0x80;
    out.fill(0xff, o + 6, o + TS_PACKET_BYTES);
  }
}

function writeNull(out: Uint8Array, o: number): void {
  out[o] = TS_SYNC_BYTE;
  out[o + 1] = (PID_NULL >> 8) & 0x1f;
  out[o + 2] = PID_NULL & 0xff;
  out[o + 3] = 0x10;
  out.fill(0xff, o + 4, o + TS_PACKET_BYTES);
}

/** PIDs 0x00-0x1F: PAT, CAT, TSDT, and DVB's SI (NIT, SDT, EIT, TDT…), which players parse and check. */
const LAST_PSI_PID = 0x1f;

/**
 * Finds a LoopProgram in an asset's bytes, fed in order (whole packets): each
 * PID's first packet, the PMTs the PAT names and the PIDs they declare, and
 * the first PCR on the PCR PID with its packet number. The header covers the
 * PSI and the declared PIDs only: a demuxer checks the counters of what it
 * follows, and a stray PID (up to 8191 of them) would only make the header long.
 */
export class LoopScanner {
  private readonly firstCc = new Map<number, number>();
  private readonly pat = new SectionAssembler();
  /** The PMT PIDs the PAT names, each with its section assembler. */
  private readonly pmts = new Map<number, SectionAssembler>();
  /** PIDs a PMT declares (its streams and PCR PID), and the PAT's network PID. */
  private readonly declared = new Set<number>();
  private packets = 0;
  private pcr = -1;
  private pcrPacket = -1;

  constructor(private readonly pcrPid: number) {}

  push(chunk: Uint8Array): void {
    for (let o = 0; o + TS_PACKET_BYTES <= chunk.length; o += TS_PACKET_BYTES, this.packets++) {
      const pid = ((chunk[o + 1] & 0x1f) << 8) | chunk[o + 2];
      if (pid === PID_NULL) continue;
      if (pid === 0) this.pat.push(chunk, o, (section) => this.onPat(section));
      this.pmts.get(pid)?.push(chunk, o, (section) => this.onPmt(section));
      if (!this.firstCc.has(pid)) {
        const cc = chunk[o + 3] & 0x0f;
        // A packet with a payload increments the counter: its header packet holds the one before.
        this.firstCc.set(pid, (chunk[o + 3] & 0x10) !== 0 ? (cc + 15) & 0x0f : cc);
      }
      if (this.pcr < 0 && pid === this.pcrPid) {
        const pcr = packetPcr(chunk, o);
        if (pcr >= 0) {
          this.pcr = pcr;
          this.pcrPacket = this.packets;
        }
      }
    }
  }

  /** The first PCR and its packet (-1, -1 when none was seen). */
  get firstPcr(): { pcr27: number; packet: number } {
    return { pcr27: this.pcr, packet: this.pcrPacket };
  }

  private onPat(section: Uint8Array): void {
    const pat = parsePat(section);
    if (isPsiError(pat)) return;
    if (pat.networkPid !== undefined) this.declared.add(pat.networkPid);
    for (const { pid } of pat.programs) if (!this.pmts.has(pid)) this.pmts.set(pid, new SectionAssembler());
  }

  private onPmt(section: Uint8Array): void {
    const pmt = parsePmt(section);
    if (isPsiError(pmt)) return;
    this.declared.add(pmt.pcrPid);
    for (const { pid } of pmt.streams) this.declared.add(pid);
  }

  /** The program; `pcr27AtPacket0`: the PCR the asset's packet 0 is sent at (-1: none). */
  program(pcr27AtPacket0: number): LoopProgram {
    const follows = (pid: number): boolean => pid <= LAST_PSI_PID || pid === this.pcrPid || this.pmts.has(pid) || this.declared.has(pid);
    const pids = [...this.firstCc.keys()].filter(follows).sort((a, b) => a - b);
    return { pids, headerCc: pids.map((p) => this.firstCc.get(p)!), pcrPid: this.pcrPid, pcr27: pcr27AtPacket0 };
  }
}
