// One streaming session as one data path sees it: its asset reader, its own
// connected UDP socket (bound to the same source port as its twin's), and the
// datagram for the session's current cursor, built the same way on both paths
// so that either can send it byte for byte.
//
// The socket is made by the native addon when it is built (a descriptor only
// this path's thread uses; its datagrams leave in the turn's batch, see
// send-batch.ts), else by Node's dgram (the plain-Node fallback).

import { createSocket, type Socket } from 'node:dgram';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { ControlBlock, type SegmentParams } from '../shared/control-block.js';
import type { InterleavedOutput, MulticastOutput, OpenSessionCommand } from '../shared/commands.js';
import { Wire, wireTag, type LockSpace } from '../shared/wire.js';
import { monoNowMs } from '../shared/clock.js';
import type { PathId } from '../shared/layout.js';
import { AssetReader, NOT_READ, type TrickTable } from './asset-reader.js';
import { buildLoopHeaderDatagram, loopElapsedTicks, newLoopPlace, placeLoopDatagram } from '../mpegts/loop.js';
import { buildTrickDatagram, planTrick, trickDatagramCount, trickDeadlineTicks, TRICK_PACKETS_PER_DATAGRAM, type TrickPlan } from '../mpegts/trick.js';
import type { ReaderThread } from './reader-thread.js';
import { TICKS_PER_MS, TS_PACKET_BYTES } from '../mpegts/packet.js';
import { RTP_HEADER_BYTES, TS_PAYLOAD_BYTES, TS_PACKETS_PER_DATAGRAM, writeRtpHeader } from '../rtp/packetizer.js';
import { nativeSender, type BatchSocket, type SendBatch } from './send-batch.js';

/**
 * Datagram buffers per session (a turn stages at most this many of a session).
 * With the addon a buffer is free again once sendBatch returns, so a turn's
 * catch-up burst is all the ring holds; Node's dgram send keeps a reference
 * until libuv is done with it, so the fallback keeps more in flight.
 */
const DATAGRAM_RING = nativeSender ? 16 : 64;

/** Socket errors caused by where a session sends, not by this path. */
const DESTINATION_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EACCES', 'EPERM', 'EMSGSIZE',
]);
const ERRNO = osConstants.errno;
/** DESTINATION_ERRORS by number, for a refused native send (found without building a string). */
const DESTINATION_ERRNOS: ReadonlyMap<number, string> = new Map([...DESTINATION_ERRORS].map((code) => [ERRNO[code as keyof typeof ERRNO], code]));

/** The path's socket for a session failed or was lost. */
export class SocketError extends Error {
  override readonly name = 'SocketError';
}

/**
 * The socket's send queue backed up: the path's own trouble, or the session's
 * route, which only the twin can tell (src/datapath/error-scope.ts).
 */
export class SendStalledError extends SocketError {}

/**
 * The viewer's RTSP connection (interleaved RTP) is gone or stays behind its
 * stream: the session's trouble on either path alike, never this path's.
 */
export class ViewerConnectionError extends Error {
  override readonly name = 'ViewerConnectionError';
}

/** How soon a sender looks again at a wire whose socket is full (a viewer reading slower than its stream). */
export const WIRE_POLL_MS = 1;

/**
 * What prepare() found: the datagram is built ('ready'), the cursor is past the
 * segment's end, a range's or the asset's ('end'), or its packets are not read
 * yet ('not-read': the reads are under way and the reader thread wakes the path
 * when one completes).
 */
export type Prepared = 'ready' | 'end' | 'not-read';

/** What a session's socket tells the data path, from Node's event loop. */
export interface PathSessionEvents {
  /** Bound and connected: the session can be sent. */
  bound(s: PathSession): void;
  /**
   * Bind or connect failed, or the kernel refuses sends to the destination
   * (EACCES: it became a broadcast address): the session's stream address, port
   * or destination is unusable, on either path alike. The session's problem,
   * never this path's.
   */
  addressUnusable(s: PathSession, err: Error): void;
  /** The socket was lost or failed for a reason of this path's own. */
  socketLost(): void;
  /** The destination refused or could not be reached (ICMP): reported, the stream goes on. */
  destinationError(s: PathSession, err: NodeJS.ErrnoException): void;
}

export class PathSession implements BatchSocket {
  readonly slot: number;
  readonly sessionId: string;
  /** Set when the session's datagrams go on its viewer's RTSP connection (its wire arrives by message). */
  readonly interleaved: InterleavedOutput | undefined;
  private wire: Wire | undefined;
  /** This path incarnation's tag (the session's send claim uses the same). */
  private readonly claimTag: number;
  /** Its tag for the wire's lock (the claim tag in this process's lock space), and that space. */
  private wireTag = 0;
  private lockSpace: LockSpace = 0;
  /** Why the viewer's connection cannot be written any more (errno name), once a flush failed. */
  private connectionLost: string | undefined;
  /** Since when the viewer's socket has held back bytes of the wire, as this path flushed it (0: it took everything). */
  private heldBackSinceMs = 0;
  readonly sendInterleaved?: BatchSocket['sendInterleaved'];
  private readonly command: OpenSessionCommand;
  private readonly cb: ControlBlock;
  private readonly path: PathId;
  private readonly events: PathSessionEvents;
  private readonly reader: AssetReader;
  private readonly headerBytes: number;
  /** The dgram socket (plain-Node fallback), or the native socket's descriptor (-1: none). */
  private socket: Socket | undefined;
  private nativeFd = -1;
  private closing = false;
  /** When the native socket began refusing sends with a full buffer (EAGAIN); 0 while it takes them. */
  private refusedSinceMs = 0;
  /** Set once the socket is bound and connected. */
  bound = false;
  /** Set when a fault outside this path ended the session here: it is no longer served. */
  faulted = false;
  /**
   * This path's fault bits for the session may be set (by an earlier incarnation,
   * or until the first success): cleared by the first successful read / send.
   */
  private readFaultMayBeSet = true;
  private sendFaultMayBeSet = true;
  /** This path's read-wait bit for the session (set while prepare waits for a read): 0 clear, 1 set, 2 not known yet. */
  private readWait = 2;
  /** Set when the socket failed; the path reports a socket failure on its next turn. */
  socketFailure: Error | undefined;
  /** Destination error codes already reported for this session (each once). */
  private readonly reportedErrors = new Set<string>();

  // The current segment, read from the control block when the control word names a new one.
  readonly segment: SegmentParams = { id: -1, startCursor: 0, startPacket: 0, startTimeMs: 0, rtpTsBase: 0, endPacket: 0, scale: 1 };
  /** Send time of the segment's first packet; NaN until read. */
  private segmentStartTicks = Number.NaN;

  // The prepared datagram: which (segment, cursor) it is, its deadline and length.
  private preparedSegment = -1;
  private preparedCursor = -1;
  deadlineMs = 0;
  private preparedLength = 0;
  private readonly ring: Buffer[] = [];
  private ringPos = 0;

  constructor(command: OpenSessionCommand, cb: ControlBlock, path: PathId, claimTag: number, events: PathSessionEvents, readerThread: ReaderThread) {
    this.slot = command.slot;
    this.claimTag = claimTag;
    this.interleaved = command.interleaved;
    this.sessionId = command.sessionId;
    this.command = command;
    this.cb = cb;
    this.path = path;
    this.events = events;
    this.headerBytes = command.transport === 'rtp' ? RTP_HEADER_BYTES : 0;
    this.reader = new AssetReader(command, readerThread, command.loop !== undefined);
    for (let i = 0; i < DATAGRAM_RING; i++) this.ring.push(Buffer.alloc(this.headerBytes + TS_PAYLOAD_BYTES));
    if (this.interleaved) this.sendInterleaved = (batch, first, count, cursorLo) => this.putOnWire(batch, first, count, cursorLo);
    else if (nativeSender) queueMicrotask(() => this.openNativeSocket(nativeSender!));
    else this.openDgramSocket(events);
  }

  /** An interleaved session's wire arrived: the session can be sent (the descriptor is the engine's, open already). */
  attachWire(sab: SharedArrayBuffer, space: LockSpace): void {
    if (this.closing || this.wire) return;
    this.wire = new Wire(sab);
    this.lockSpace = space;
    this.wireTag = wireTag(this.claimTag, space);
    this.socketUp();
  }

  /**
   * Interleaved: append the run's datagrams to the wire and flush it, under the
   * wire's lock. Datagrams a dead sender already appended (the wire's media
   * cursor is past this run's first) count as sent, not appended again.
   * Results: 0 in the wire, EAGAIN the wire is full, EBUSY someone else holds it.
   */
  private putOnWire(batch: SendBatch<BatchSocket>, first: number, count: number, cursorLo: number): void {
    const results = batch.results;
    const wire = this.wire;
    if (!wire || !this.lockWire(wire)) {
      results.fill(ERRNO.EBUSY, first, first + count);
      return;
    }
    try {
      let done = (wire.mediaNext() - cursorLo) | 0;
      if (done < 0) {
        wire.setMediaNext(cursorLo); // cannot happen: the ring never runs behind the cursor
        done = 0;
      }
      if (done > count) done = count;
      const appended = done < count ? wire.appendMedia(batch.buffers, batch.lengths, first + done, count - done, this.interleaved!.channel, cursorLo + done) : 0;
      results.fill(0, first, first + done + appended);
      results.fill(ERRNO.EAGAIN, first + done + appended, first + count);
      this.flushWire(wire);
    } finally {
      wire.unlock(this.wireTag);
    }
  }

  /**
   * Interleaved, sender: bytes still in the wire (the viewer's socket was full)
   * go on now, whether or not a datagram is due. True while some are left.
   */
  flushPending(): boolean {
    const wire = this.wire;
    if (!wire || wire.pending() === 0) return false;
    if (!this.lockWire(wire)) return true;
    try {
      this.flushWire(wire);
    } finally {
      wire.unlock(this.wireTag);
    }
    return wire.pending() > 0;
  }

  /** Interleaved: the viewer's socket is full, its stream waits in the wire (no evidence against a sender). */
  get wireBacklogged(): boolean {
    return this.wire !== undefined && this.wire.pending() > 0;
  }

  /**
   * Interleaved, sender: throw ViewerConnectionError when the viewer's connection
   * failed, or when its socket has held bytes of the wire back for longer than the
   * session's backlog bound (the viewer reads slower than the stream: ended, not
   * waited for). Measured on the viewer's socket, not on the schedule: a sender
   * that is late itself (a loaded machine) is no fault of the viewer's.
   */
  checkViewer(now: number): void {
    if (this.connectionLost !== undefined) throw new ViewerConnectionError(`the viewer's RTSP connection failed (${this.connectionLost})`);
    const heldBackMs = this.heldBackSinceMs === 0 ? 0 : now - this.heldBackSinceMs;
    if (heldBackMs > this.interleaved!.backlogMs) {
      throw new ViewerConnectionError(`the viewer reads slower than its stream: its socket has been full for ${Math.round(heldBackMs)} ms, over the ${this.interleaved!.backlogMs} ms backlog bound`);
    }
  }

  /** The wire's lock (Wire.lockIn): taken over from a path that died holding it. */
  private lockWire(wire: Wire): boolean {
    return wire.lockIn(this.wireTag, this.lockSpace, this.interleaved!.fd, this.holderDead);
  }

  private readonly holderDead = (holder: number): boolean => this.cb.claimHolderDead(holder);

  private flushWire(wire: Wire): void {
    const sent = wire.flush(this.interleaved!.fd);
    if (sent >= 0 || sent === -ERRNO.EAGAIN) {
      if (sent > 0) this.sent();
      if (wire.pending() === 0) this.heldBackSinceMs = 0;
      else if (this.heldBackSinceMs === 0) this.heldBackSinceMs = monoNowMs();
      return;
    }
    this.connectionLost ??= getSystemErrorName(sent);
  }

  /**
   * The native socket: made, bound and connected by the addon (nonblocking, so
   * nothing here waits). Reported from a microtask, as the dgram socket reports
   * from its callbacks: the path counts the session as setting up first.
   */
  private openNativeSocket(addon: NonNullable<typeof nativeSender>): void {
    if (this.closing) return;
    const { source, destination } = this.command;
    const fd = addon.udpOpen(source.address, source.port);
    if (fd < 0) {
      this.events.addressUnusable(this, new Error(`cannot stream from ${source.address}:${source.port}: bind ${getSystemErrorName(fd)}`));
      return;
    }
    this.nativeFd = fd;
    const { multicast } = this.command;
    const optionsErr = multicast ? addon.udpMulticast(fd, multicast.ttl, multicast.interface ?? '') : 0;
    if (optionsErr !== 0) {
      this.cannotStreamTo(new Error(`multicast options ${getSystemErrorName(-optionsErr)} (ttl ${multicast!.ttl}, interface ${multicast!.interface ?? 'by route'})`));
      return;
    }
    const err = addon.udpConnect(fd, destination.address, destination.port);
    if (err !== 0) {
      this.cannotStreamTo(new Error(`connect ${getSystemErrorName(-err)} ${destination.address}:${destination.port}`));
      return;
    }
    this.socketUp();
  }

  /** Bound and connected: the session can be sent. */
  private socketUp(): void {
    this.bound = true;
    // A send fault an earlier life of this path left here says nothing about this socket.
    this.cb.clearSessionFault(this.slot, this.path, 'send');
    this.events.bound(this);
  }

  private openDgramSocket(events: PathSessionEvents): void {
    const { source, destination } = this.command;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    this.socket = socket;
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.closing) return;
      // A bind error is about the stream address and port, which both paths share.
      if (err.syscall === 'bind') {
        events.addressUnusable(this, new Error(`cannot stream from ${source.address}:${source.port}: ${err.message}`));
        return;
      }
      // Errors about the destination (the viewer is not listening, no route to it,
      // not allowed to send there) reach both paths alike: switching would not
      // help, and they must not take a path down. Reported; the stream goes on
      // (a viewer that is not listening yet draws ECONNREFUSED, and that is normal).
      if (err.code !== undefined && DESTINATION_ERRORS.has(err.code)) {
        events.destinationError(this, err);
        return;
      }
      this.socketFailure ??= err;
      events.socketLost();
    });
    socket.on('close', () => {
      if (!this.closing) {
        this.socketFailure ??= new SocketError('socket closed underneath the session');
        events.socketLost();
      }
    });
    socket.bind({ port: source.port, address: source.address, exclusive: false }, () => {
      if (this.closing) return;
      // Node hands connect errors to this callback (not to 'error'); a bad port throws.
      const connected = (err?: Error): void => {
        if (this.closing) return;
        if (err) {
          this.cannotStreamTo(err);
          return;
        }
        this.socketUp();
      };
      try {
        if (this.command.multicast) setMulticastOptions(socket, this.command.multicast);
        socket.connect(destination.port, destination.address, connected);
      } catch (err) {
        connected(err as Error);
      }
    });
  }

  /**
   * Bring the session's segment up to date with the control word. False when the
   * segment is not readable yet (the control plane is publishing a newer one).
   * A new segment (a seek, a resume) starts its reads at once.
   */
  syncSegment(cb: ControlBlock, segmentId: number): boolean {
    if (segmentId === this.segment.id) return true;
    if (!cb.readSegment(this.slot, segmentId, this.segment)) return false;
    this.segmentStartTicks = this.segment.startPacket < this.reader.packetCount ? this.reader.timeOf(this.segment.startPacket) : 0;
    if (this.segmentStartTicks === NOT_READ) this.segmentStartTicks = Number.NaN;
    return true;
  }

  /**
   * Build the datagram for `cursor` in the current segment (once; later calls for
   * the same cursor are free). Never waits for the disk (see Prepared).
   */
  prepare(cursor: number): Prepared {
    if (cursor === this.preparedCursor && this.segment.id === this.preparedSegment) return 'ready';
    const seg = this.segment;
    if (seg.scale !== 1) return this.prepareTrick(cursor);
    if (this.command.loop) return this.prepareLoop(cursor);
    const first = seg.startPacket + TS_PACKETS_PER_DATAGRAM * (cursor - seg.startCursor);
    const end = Math.min(seg.endPacket, this.reader.packetCount); // a range's end, or the asset's
    if (first >= end) return 'end';
    if (Number.isNaN(this.segmentStartTicks)) {
      const start = this.reader.timeOf(seg.startPacket);
      if (start === NOT_READ) return this.waitForRead();
      this.segmentStartTicks = start;
    }
    const count = Math.min(TS_PACKETS_PER_DATAGRAM, end - first);
    const buf = this.ring[this.ringPos];
    const ticks = this.reader.copyPackets(first, count, buf, this.headerBytes);
    if (ticks === NOT_READ) return this.waitForRead();
    return this.prepared(cursor, count, ticks - this.segmentStartTicks);
  }

  /** The datagram for `cursor` is in the ring buffer, `elapsedTicks` into its segment: clear the read bits, write its RTP header and deadline. */
  private prepared(cursor: number, count: number, elapsedTicks: number): Prepared {
    const seg = this.segment;
    const buf = this.ring[this.ringPos];
    if (this.readFaultMayBeSet) {
      this.cb.clearSessionFault(this.slot, this.path, 'read');
      this.readFaultMayBeSet = false;
    }
    if (this.readWait !== 0) {
      this.cb.setReadWait(this.slot, this.path, false);
      this.readWait = 0;
    }
    if (this.headerBytes > 0) {
      const seq = (this.command.initialSeq + cursor) & 0xffff;
      writeRtpHeader(buf, seq, (seg.rtpTsBase + elapsedTicks) >>> 0, this.command.ssrc);
    }
    this.deadlineMs = seg.startTimeMs + elapsedTicks / TICKS_PER_MS;
    this.preparedLength = this.headerBytes + count * TS_PACKET_BYTES;
    this.preparedCursor = cursor;
    this.preparedSegment = seg.id;
    return 'ready';
  }

  // ── Trick play (segment scale ≠ 1): the datagrams mpegts/trick.ts builds from the key frames ──

  /** The plan of segment `trickSegment` (built once per segment, from the key table the reader thread read). */
  private trickPlan: TrickPlan | undefined;
  private trickSegment = -1;
  private trickTable: TrickTable | undefined;

  /** prepare() of a trick segment: datagram `cursor − startCursor` of its plan; the segment ends with the plan. */
  private prepareTrick(cursor: number): Prepared {
    const seg = this.segment;
    if (this.trickSegment !== seg.id) {
      this.trickTable ??= this.reader.trickTable();
      if (!this.trickTable) return this.waitForRead();
      this.trickPlan = planTrick(this.trickTable.keys, seg.startPacket, seg.scale!);
      this.trickSegment = seg.id;
    }
    const plan = this.trickPlan!;
    const d = cursor - seg.startCursor;
    if (d >= trickDatagramCount(plan)) return 'end';
    if (!buildTrickDatagram(plan, this.trickTable!.program, d, this.reader, this.ring[this.ringPos], this.headerBytes)) return this.waitForRead();
    return this.prepared(cursor, TRICK_PACKETS_PER_DATAGRAM, trickDeadlineTicks(plan, d));
  }

  // ── Loops (a broadcast with loop set): the datagrams mpegts/loop.ts places, with no end ──

  /** Where the datagram being prepared falls (filled in, never allocated). */
  private readonly loopPlace = newLoopPlace();

  /** prepare() of a looping session: asset packets, or a loop header datagram at the start of each pass after the first. */
  private prepareLoop(cursor: number): Prepared {
    const seg = this.segment;
    const plan = this.command.loop!;
    const place = this.loopPlace;
    placeLoopDatagram(plan, seg.startPacket, cursor - seg.startCursor, place);
    if (Number.isNaN(this.segmentStartTicks)) {
      const start = this.reader.timeOf(seg.startPacket);
      if (start === NOT_READ) return this.waitForRead();
      this.segmentStartTicks = start;
    }
    const buf = this.ring[this.ringPos];
    let ticks = 0; // a header datagram goes at packet 0's send time (0: times count from packet 0)
    if (place.header >= 0) {
      buildLoopHeaderDatagram(plan, place.header, buf, this.headerBytes);
    } else {
      ticks = this.reader.copyPackets(place.first, place.count, buf, this.headerBytes);
      if (ticks === NOT_READ) return this.waitForRead();
    }
    return this.prepared(cursor, place.count, loopElapsedTicks(plan, place, ticks, this.segmentStartTicks));
  }

  /** The datagram's packets are not read yet: say so to the twin (its lateness detector reads it). */
  private waitForRead(): Prepared {
    if (this.readWait !== 1) {
      this.cb.setReadWait(this.slot, this.path, true);
      this.readWait = 1;
    }
    return 'not-read';
  }

  // The datagram a standby has seen due and unsent: which one, and since when.
  private owedSegment = -1;
  private owedCursor = -1;
  private owedSinceMs = 0;

  /**
   * Since when the sender has owed the datagram at (segment, cursor): its
   * deadline, or the moment this path first saw that datagram, if later (a
   * segment the control plane published late, or a cursor this path saw late,
   * is no evidence against the sender).
   */
  owedSince(segment: number, cursor: number, now: number): number {
    if (segment !== this.owedSegment || cursor !== this.owedCursor) {
      this.owedSegment = segment;
      this.owedCursor = cursor;
      this.owedSinceMs = Math.max(now, this.deadlineMs);
    }
    return this.owedSinceMs;
  }

  /**
   * How many datagrams this session may stage now. The dgram fallback's send
   * queue holds on to ring buffers until libuv is done with them: staged ones must
   * not reach those, and a queue that has backed up is a stalled send.
   */
  sendRoom(): number {
    if (this.socketFailure) throw new SocketError(`socket failed: ${this.socketFailure.message}`);
    if (nativeSender || this.interleaved) return DATAGRAM_RING;
    let queued: number;
    try {
      queued = this.socket!.getSendQueueCount();
    } catch (err) {
      throw new SocketError(`send failed: ${(err as Error).message}`);
    }
    if (queued >= DATAGRAM_RING - 1) throw new SendStalledError('send queue backed up');
    return DATAGRAM_RING - 1 - queued;
  }

  /** Put the prepared datagram in the turn's batch; the next prepare builds into the next ring buffer. */
  stage(batch: SendBatch<PathSession>): void {
    batch.add(this.ring[this.ringPos], this.preparedLength);
    this.ringPos = (this.ringPos + 1) % DATAGRAM_RING;
    this.preparedCursor = -1;
  }

  /** The native socket's descriptor; -1 once closed (or on the dgram fallback). */
  get fd(): number {
    return this.nativeFd;
  }

  get closed(): boolean {
    return this.closing;
  }

  /**
   * The fallback's send of one staged datagram on the dgram socket: 0, or EIO when
   * Node refused it outright (the socket is gone: this path's failure).
   */
  sendDgram(buf: Buffer, length: number): number {
    const socket = this.socket;
    if (!socket) return ERRNO.EBADF;
    try {
      // Node reports a refused send only to a send callback, which costs a tick per
      // send: one datagram in DATAGRAM_RING carries it, enough for a refusal that lasts.
      if (buf === this.ring[0]) socket.send(buf, 0, length, this.afterSend);
      else socket.send(buf, 0, length);
      return 0;
    } catch (err) {
      this.socketFailure ??= new SocketError(`send failed: ${(err as Error).message}`);
      return ERRNO.EIO;
    }
  }

  /** Datagrams of this session left: a send fault of an earlier life is cleared, a refusal is over. */
  sent(): void {
    this.refusedSinceMs = 0;
    if (this.sendFaultMayBeSet) {
      this.cb.clearSessionFault(this.slot, this.path, 'send');
      this.sendFaultMayBeSet = false;
    }
  }

  /**
   * The kernel refused a datagram of this session with errno `code` (native send).
   * 'dropped': a destination error (reported once per code, the stream goes on, the
   * datagram is gone as if lost on the way). 'retry': the socket buffer is full, the
   * datagram stays due; refused for longer than `stallMs()` it is a stalled send,
   * thrown as today's SendStalledError. 'stop': the session ends here (EACCES: the
   * destination became a broadcast address) or this path's socket failed.
   */
  refused(code: number, now: number, stallMs: () => number): 'dropped' | 'retry' | 'stop' {
    // Interleaved: a full wire is the viewer's pace (checkViewer bounds it), a busy one another writer's turn.
    if (this.interleaved) return 'retry';
    if (code === ERRNO.EAGAIN || code === ERRNO.ENOBUFS) {
      if (this.refusedSinceMs === 0) this.refusedSinceMs = now;
      else if (now - this.refusedSinceMs > stallMs()) throw new SendStalledError(`socket refused sends (${getSystemErrorName(-code)}) for ${(now - this.refusedSinceMs).toFixed(1)} ms`);
      return 'retry';
    }
    if (code === ERRNO.EACCES) {
      this.cannotStreamTo(new Error(`send EACCES`));
      return 'stop';
    }
    const destinationCode = DESTINATION_ERRNOS.get(code);
    if (destinationCode !== undefined) {
      if (!this.reportedErrors.has(destinationCode)) {
        const err: NodeJS.ErrnoException = new Error(`send ${destinationCode}`);
        err.code = destinationCode;
        this.events.destinationError(this, err);
      }
      return 'dropped';
    }
    this.socketFailure ??= new SocketError(`send failed: ${getSystemErrorName(-code)}`);
    this.events.socketLost();
    return 'stop';
  }

  /**
   * A send refused with EACCES (a destination that became a broadcast address)
   * is refused on every send, on either path: the session ends. Other send
   * errors are ignored here, as Node ignores them on sends without a callback
   * (it reports a send error only to that send's callback). Up to DATAGRAM_RING - 1
   * refused datagrams go before the one that carries the callback.
   */
  private readonly afterSend = (err: NodeJS.ErrnoException | null): void => {
    if (err?.code !== 'EACCES' || this.closing) return;
    this.cannotStreamTo(err);
  };

  private cannotStreamTo(err: Error): void {
    const { address, port } = this.command.destination;
    this.events.addressUnusable(this, new Error(`cannot stream to ${address}:${port}: ${err.message}`));
  }

  /** True the first time an error code is seen for this session. */
  firstReportOf(code: string): boolean {
    if (this.reportedErrors.has(code)) return false;
    this.reportedErrors.add(code);
    return true;
  }

  /** Fault injection: lose the socket, as when an interface goes away. */
  breakSocket(): void {
    if (this.interleaved) {
      // The connection is the viewer's, shared with the twin: this path loses it, the twin does not.
      this.socketFailure ??= new SocketError('socket closed underneath the session');
      this.events.socketLost();
      return;
    }
    if (this.nativeFd >= 0) {
      // No 'close' event to tell of it: say so as the dgram socket's would.
      this.closeNativeSocket();
      this.socketFailure ??= new SocketError('socket closed underneath the session');
      this.events.socketLost();
    }
    this.socket?.close();
  }

  private closeNativeSocket(): void {
    if (this.nativeFd < 0) return;
    const fd = this.nativeFd;
    this.nativeFd = -1; // before the close: the number may belong to another file at once
    nativeSender!.udpClose(fd);
  }

  breakDisk(): void {
    this.reader.breakDisk();
    this.preparedCursor = -1;
  }

  /** Bound or connecting still: the path waits for this socket before it reports synced. */
  get settingUp(): boolean {
    return !this.bound && !this.faulted;
  }

  /** A fault outside this path ended the session here: let go of its socket and files. */
  fault(): void {
    this.faulted = true;
    this.close();
  }

  close(): void {
    this.closing = true;
    this.reader.close();
    this.closeNativeSocket();
    try { this.socket?.close(); } catch { /* already closed */ }
    this.socket = undefined;
  }
}

/**
 * The dgram fallback's multicast settings, as the addon's udpMulticast sets them
 * (before the connect, whose route lookup then goes through the interface);
 * loopback on, so receivers on this host hear the group too.
 */
function setMulticastOptions(socket: Socket, multicast: MulticastOutput): void {
  socket.setMulticastTTL(multicast.ttl);
  if (multicast.interface !== undefined) socket.setMulticastInterface(multicast.interface);
  socket.setMulticastLoopback(true);
}
