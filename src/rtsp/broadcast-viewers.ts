// Viewers of broadcasts: rtsp://host/broadcast/<name> (issue 16). A multicast
// broadcast already streams to its group whether anyone watches or not, so a
// viewer's DESCRIBE, SETUP and PLAY only tell it where to listen: SETUP answers
// the group's transport (destination, port pair, ttl) and a session id that is
// a handle here and nothing else — no data-path state, no ports, no admission,
// as GStreamer's RTSP server and live555 serve a shared multicast stream.
// TEARDOWN drops the handle; the broadcast goes on. A unicast broadcast (a push
// to one receiver) has nothing to join: refused with the reason.
//
// The server hands a request here when its URL is a broadcast's or its Session
// header names one of these handles (owns()); everything else stays the server's.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { BROADCAST_PATH_SEGMENT, type BroadcastLookup, type BroadcastStream } from '../broadcast/lookup.js';
import { TwinframeError } from '../errors.js';
import { isMulticastGroup } from '../shared/commands.js';
import type { RtspMedia } from './backend.js';
import {
  chooseMulticastTransport, multicastTransportReply, parseTransport, serializeTransportSpec, type MulticastGroup, type TransportSpec,
} from './headers/transport.js';
import { parseSession, serializeSession } from './headers/session.js';
import type { HeaderValue, RtspRequest } from './message.js';
import { buildSdp, sdpSessionId } from './sdp.js';
import { TRACK_CONTROL, parseRtspUrl } from './url.js';

/** Where broadcasts' URLs start; config validation keeps it from being a mount prefix. */
export const BROADCAST_PREFIX = `/${BROADCAST_PATH_SEGMENT}/`;

export interface BroadcastReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, HeaderValue>>;
  readonly body?: string;
}

export interface BroadcastViewersOptions {
  /** The broadcasts; undefined: there are none (every broadcast URL is 404). */
  readonly lookup: BroadcastLookup | undefined;
  /** The asset at a URL path, for the SDP's facts (name, version, bitrate). */
  readonly resolve: (assetPath: string) => Promise<RtspMedia>;
  /** The methods OPTIONS lists. */
  readonly publicMethods: readonly string[];
  /** As they are now (a reload changes them): a handle's inactivity timeout, and handles per client address. */
  readonly settings: () => { readonly sessionTimeoutMs: number; readonly maxPerAddress: number };
  readonly logger: Logger;
  /** May a refusal of `status` to `peer` be logged now: the RTSP server's per-client bound on refusal lines (log-rate-limit.ts). */
  readonly allowLog: (peer: string, status: number) => boolean;
}

interface Handle {
  readonly id: string;
  readonly broadcast: string;
  readonly peer: string;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
}

export class BroadcastViewers {
  readonly #options: BroadcastViewersOptions;
  readonly #handles = new Map<string, Handle>();

  constructor(options: BroadcastViewersOptions) {
    this.#options = options;
  }

  /**
   * Whether `request` is about a broadcast: its Session header names one of the
   * handles, or it names no session and its URL is a broadcast's (OPTIONS aside).
   * A request naming any other session is the server's (454 when unknown).
   */
  owns(request: RtspRequest): boolean {
    if (request.headers.get('session') !== undefined) return this.#handleOf(request) !== undefined;
    return request.method !== 'OPTIONS' && this.#nameOf(request.uri) !== undefined;
  }

  async handle(peer: string, local: string, request: RtspRequest): Promise<BroadcastReply> {
    try {
      return await this.#dispatch(peer, local, request);
    } catch (err) {
      if (!(err instanceof TwinframeError) || err.code !== 'TF_RTSP_METHOD_NOT_ALLOWED') throw err;
      // The player shows the reason, not only the log: RFC 2326 §12.4 wants Allow with a 405.
      if (this.#options.allowLog(peer, 405)) this.#options.logger.info({ peer, method: request.method, status: 405, reason: err.message }, 'broadcast request refused');
      return { status: 405, headers: { Allow: 'OPTIONS', 'Content-Type': 'text/plain' }, body: `${err.message}\r\n` };
    }
  }

  async #dispatch(peer: string, local: string, request: RtspRequest): Promise<BroadcastReply> {
    switch (request.method) {
      case 'DESCRIBE': return this.#describe(local, request);
      case 'SETUP': return this.#setup(peer, request);
      case 'PLAY': return this.#play(peer, request);
      case 'TEARDOWN': return this.#teardown(request);
      case 'OPTIONS': return { status: 200, headers: { Public: this.#options.publicMethods.join(', '), ...this.#touched(request) } };
      case 'PAUSE':
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        // The group flows on whatever a viewer does: PAUSE, like a keep-alive, only keeps the handle.
        if (request.method !== 'PAUSE' && request.body.toString('latin1').trim() !== '') {
          throw new TwinframeError('TF_RTSP_PARAMETER_NOT_UNDERSTOOD', `${request.method} names parameters; this server has none`);
        }
        return { status: 200, headers: this.#touched(request) };
      default:
        throw new TwinframeError('TF_RTSP_NOT_IMPLEMENTED', `method ${request.method.slice(0, 32)} is not implemented`);
    }
  }

  /** Handles to broadcasts, for operators and tests. */
  viewers(): ReadonlyArray<{ id: string; broadcast: string; peer: string }> {
    return [...this.#handles.values()].map((h) => ({ id: h.id, broadcast: h.broadcast, peer: h.peer }));
  }

  close(): void {
    for (const handle of this.#handles.values()) clearTimeout(handle.timer);
    this.#handles.clear();
  }

  async #describe(local: string, request: RtspRequest): Promise<BroadcastReply> {
    const { stream, group } = this.#joinable(request.uri);
    const asset = await this.#options.resolve(stream.assetName);
    const sdp = buildSdp({
      sessionId: sdpSessionId(`broadcast:${stream.name}`), // apart from the assets' ids
      sessionVersion: Math.max(1, Math.floor(asset.sourceMtimeMs)),
      serverAddress: local,
      name: stream.name,
      bitrateKbps: asset.bitrate / 1000,
      multicast: { group: group.group, ttl: group.ttl, port: group.port, transport: group.kind },
    });
    let base = request.uri.replace(/[?#].*$/, '').replace(/\/track[0-9]{1,3}\/?$/, '');
    if (!base.endsWith('/')) base += '/';
    return { status: 200, headers: { 'Content-Base': base, 'Content-Type': 'application/sdp' }, body: sdp };
  }

  #setup(peer: string, request: RtspRequest): BroadcastReply {
    if (request.headers.get('session') !== undefined) {
      throw new TwinframeError('TF_SESSION_INVALID_STATE', 'this session already joined its broadcast');
    }
    const url = parseRtspUrl(request.uri);
    if (url.kind === 'absolute' && url.track !== undefined && url.track !== TRACK_CONTROL) {
      throw new TwinframeError('TF_RTSP_NOT_FOUND', `no track ${url.track} (a broadcast has one, ${TRACK_CONTROL})`);
    }
    const { stream, group } = this.#joinable(request.uri);
    const transportHeader = request.headers.get('transport');
    if (transportHeader === undefined) throw new TwinframeError('TF_RTSP_BAD_REQUEST', 'SETUP without a Transport header');
    let chosen: TransportSpec;
    try {
      chosen = chooseMulticastTransport(parseTransport(transportHeader), group);
    } catch (err) {
      if (!(err instanceof TwinframeError) || err.code !== 'TF_RTSP_UNSUPPORTED_TRANSPORT') throw err;
      // What the viewer can have instead goes with the refusal: a player may SETUP again with it.
      if (this.#options.allowLog(peer, 461)) this.#options.logger.info({ peer, broadcast: stream.name, status: 461, reason: err.message }, 'broadcast SETUP refused');
      return { status: 461, headers: { Transport: serializeTransportSpec(multicastTransportReply(group)) } };
    }
    const settings = this.#options.settings();
    const fromPeer = [...this.#handles.values()].filter((h) => h.peer === peer).length;
    if (fromPeer >= settings.maxPerAddress) {
      throw new TwinframeError('TF_SESSION_LIMIT', `this client address already holds ${fromPeer} broadcast sessions (limit ${settings.maxPerAddress})`, { limit: settings.maxPerAddress });
    }
    const handle: Handle = { id: randomBytes(8).toString('hex'), broadcast: stream.name, peer, timeoutMs: settings.sessionTimeoutMs, timer: undefined };
    this.#handles.set(handle.id, handle);
    this.#touch(handle);
    this.#options.logger.info({ session: handle.id, peer, broadcast: stream.name, group: `${group.group}:${group.port}`, ttl: group.ttl }, 'broadcast joined');
    // The SSRC of a running broadcast, as GStreamer's server gives it for a group too: the same whichever path sends.
    const reply = { ...multicastTransportReply(group, chosen), ...(stream.ssrc === undefined ? {} : { ssrc: stream.ssrc }) };
    return { status: 200, headers: { Transport: serializeTransportSpec(reply), Session: this.#sessionValue(handle) } };
  }

  /**
   * PLAY changes nothing on the data paths: the group is already flowing. No
   * RTP-Info: the broadcast's sequence number at the moment this reply leaves
   * is not known here, and a guess would mislead the player's loss count.
   * A broadcast that exists but sends nothing now is 503 (RFC 2326 §11.3.2),
   * with Retry-After when its start or next try is known: one that will start
   * (scheduled, starting, preparing) keeps the viewer's handle for a PLAY then; one the
   * operator stopped, that ended or failed frees it (a later SETUP joins
   * afresh). 454 only when the handle's broadcast was removed (freed too).
   */
  #play(peer: string, request: RtspRequest): BroadcastReply {
    const handle = this.#requiredHandle(request);
    const stream = this.#options.lookup?.find(handle.broadcast);
    if (stream === undefined) {
      this.#free(handle);
      throw new TwinframeError('TF_SESSION_NOT_FOUND', `broadcast ${handle.broadcast} no longer exists`);
    }
    if (stream.sessionId !== undefined) return { status: 200, headers: { Range: 'npt=now-', Session: this.#sessionValue(handle) } };
    const willStart = stream.status === 'scheduled' || stream.status === 'starting' || stream.status === 'preparing';
    if (!willStart) this.#free(handle);
    const reason = `broadcast ${handle.broadcast} is not sending now (${stream.status})${willStart ? '' : '; this session is closed, SETUP again to join it later'}`;
    if (this.#options.allowLog(peer, 503)) this.#options.logger.info({ peer, session: handle.id, broadcast: handle.broadcast, status: 503, reason }, 'broadcast PLAY refused');
    const headers: Record<string, HeaderValue> = { 'Content-Type': 'text/plain' };
    if (stream.nextAtMs !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil((stream.nextAtMs - Date.now()) / 1000)));
    if (willStart) headers.Session = this.#sessionValue(handle);
    return { status: 503, headers, body: `${reason}\r\n` };
  }

  #teardown(request: RtspRequest): BroadcastReply {
    const handle = this.#requiredHandle(request);
    this.#free(handle);
    this.#options.logger.info({ session: handle.id, broadcast: handle.broadcast }, 'broadcast left');
    return { status: 200 };
  }

  #free(handle: Handle): void {
    clearTimeout(handle.timer);
    this.#handles.delete(handle.id);
  }

  /** The multicast broadcast a URL names, and its group; 404 when there is none, 405 for a unicast one. */
  #joinable(uri: string): { stream: BroadcastStream; group: MulticastGroup } {
    const name = this.#nameOf(uri);
    const stream = name === undefined ? undefined : this.#options.lookup?.find(name);
    if (stream === undefined) throw new TwinframeError('TF_RTSP_NOT_FOUND', `no broadcast ${name ?? ''}`);
    const { address, port } = stream.destination;
    if (!isMulticastGroup(address)) {
      throw new TwinframeError('TF_RTSP_METHOD_NOT_ALLOWED', `broadcast ${stream.name} is a unicast push to ${address}:${port}: there is no group to join`);
    }
    return { stream, group: { group: address, port, ttl: stream.ttl, kind: stream.transport } };
  }

  /** The broadcast name of a URL under BROADCAST_PREFIX (its track suffix aside), or undefined. */
  #nameOf(uri: string): string | undefined {
    if (uri === '*') return undefined;
    let url;
    try {
      url = parseRtspUrl(uri);
    } catch {
      return undefined;
    }
    if (url.kind !== 'absolute' || !url.assetPath.startsWith(BROADCAST_PREFIX)) return undefined;
    const encoded = url.assetPath.slice(BROADCAST_PREFIX.length);
    try {
      return decodeURIComponent(encoded);
    } catch {
      return encoded;
    }
  }

  #handleOf(request: RtspRequest): Handle | undefined {
    const header = request.headers.get('session');
    if (header === undefined) return undefined;
    try {
      return this.#handles.get(parseSession(header).id);
    } catch {
      return undefined; // malformed: the server's own parsing answers it
    }
  }

  #requiredHandle(request: RtspRequest): Handle {
    const handle = this.#handleOf(request);
    if (handle === undefined) throw new TwinframeError('TF_SESSION_NOT_FOUND', `${request.method} without the Session header of a broadcast viewer`);
    this.#touch(handle);
    return handle;
  }

  /** The Session header of the handle a request names (owns() made sure it exists), its timeout started over; none without one. */
  #touched(request: RtspRequest): Record<string, HeaderValue> {
    const handle = this.#handleOf(request);
    if (handle === undefined) return {};
    this.#touch(handle);
    return { Session: this.#sessionValue(handle) };
  }

  #touch(handle: Handle): void {
    clearTimeout(handle.timer);
    handle.timer = setTimeout(() => {
      this.#handles.delete(handle.id);
      this.#options.logger.info({ session: handle.id, broadcast: handle.broadcast, timeoutMs: handle.timeoutMs }, 'broadcast viewer timed out');
    }, handle.timeoutMs);
    handle.timer.unref();
  }

  #sessionValue(handle: Handle): string {
    return serializeSession({ id: handle.id, timeout: Math.max(1, Math.floor(handle.timeoutMs / 1000)) });
  }
}
