// The RTSP server's backend (rtsp/backend.ts) over the real parts: assets come
// from the catalog, sessions from the engine. The only module that knows both
// the RTSP side's interface and the control plane; the composition root
// (server.ts) hands it to the RtspServer.

import type { AssetCatalog, CatalogAsset } from './catalog/catalog.js';
import { readPacketTicksAsync, readPicturesAsync } from './catalog/index-file.js';
import { toEngineAsset } from './engine/asset.js';
import { TICKS_HZ } from './mpegts/packet.js';
import type { Engine, EngineAsset, SessionFailedEvent } from './engine/engine.js';
import { pictureNptAt, rangeEndPacket, seekStartPacket } from './index-format/index-format.js';
import type { RtspBackend, RtspBackendListener, RtspMedia, RtspOpenOptions, RtspPlayResult, RtspSessionInfo, RtspSharedWire } from './rtsp/backend.js';
import { Wire } from './shared/wire.js';

/** One catalog asset as the RTSP server sees it. */
class CatalogMedia implements RtspMedia {
  readonly name: string;
  readonly sourceMtimeMs: number;
  readonly durationMs: number;
  readonly bitrate: number;
  readonly packetCount: number;
  readonly #asset: CatalogAsset;
  readonly #engineAsset: EngineAsset;
  readonly #engine: Engine;
  /** The index's pictures table, read on the first range end asked for. */
  #pictures: Promise<Uint32Array> | undefined;

  constructor(asset: CatalogAsset, engine: Engine) {
    this.name = asset.name;
    this.sourceMtimeMs = asset.meta.sourceMtimeMs;
    this.durationMs = asset.meta.presentationEndMs;
    this.bitrate = asset.meta.bitrate;
    this.packetCount = asset.meta.packetCount;
    this.#asset = asset;
    this.#engineAsset = toEngineAsset({ ...asset, assetPath: asset.path });
    this.#engine = engine;
  }

  startPacketAt(ticks: number): number {
    return seekStartPacket(this.#asset.meta, ticks);
  }

  /** Packet 0 and key frames from the cached metadata; any other packet (a resume) from the index file. */
  packetTicks(packet: number): Promise<number> {
    if (packet === 0) return Promise.resolve(0);
    const key = this.#asset.meta.randomAccess.find((rap) => rap.packet === packet);
    if (key !== undefined) return Promise.resolve(key.ticks);
    return readPacketTicksAsync(this.#asset.indexPath, this.#asset.timesOffset, packet);
  }

  async endPacketAt(ticks: number): Promise<number> {
    return rangeEndPacket(await this.#picturesTable(), this.packetCount, ticks);
  }

  async endTicks(endPacket: number): Promise<number> {
    if (endPacket >= this.packetCount) return Math.round(this.durationMs * (TICKS_HZ / 1000));
    return pictureNptAt(await this.#picturesTable(), endPacket) ?? this.packetTicks(endPacket);
  }

  #picturesTable(): Promise<Uint32Array> {
    this.#pictures ??= readPicturesAsync(this.#asset.indexPath, this.#asset);
    // A failed read is tried again by the next PLAY, not remembered.
    this.#pictures.catch(() => { this.#pictures = undefined; });
    return this.#pictures;
  }

  async openSession(options: RtspOpenOptions): Promise<RtspSessionInfo> {
    const info = await this.#engine.openSession({ asset: this.#engineAsset, assetName: this.name, ...options });
    return { ...info, wireHolderDead: (tag) => this.#engine.claimHolderDead(info.pair, tag) };
  }
}

export class EngineRtspBackend implements RtspBackend {
  readonly #engine: Engine;
  readonly #catalog: AssetCatalog;

  constructor(engine: Engine, catalog: AssetCatalog) {
    this.#engine = engine;
    this.#catalog = catalog;
  }

  async resolve(urlPath: string): Promise<RtspMedia> {
    return new CatalogMedia(await this.#catalog.resolve(urlPath), this.#engine);
  }

  play(sessionId: string, options: { startPacket?: number; endPacket?: number; scale?: number }): Promise<RtspPlayResult> {
    return this.#engine.play(sessionId, options);
  }

  pause(sessionId: string): void {
    this.#engine.pause(sessionId);
  }

  closeSession(sessionId: string): void {
    this.#engine.closeSession(sessionId);
  }

  sent(sessionId: string): number | undefined {
    return this.#engine.getSession(sessionId)?.sent;
  }

  interleavedWire(sessionId: string): RtspSharedWire | undefined {
    const shared = this.#engine.interleavedWire(sessionId);
    return shared && {
      wire: shared.wire, region: shared.region, retired: new Wire(shared.wire).retired,
      holderDead: (tag) => this.#engine.claimHolderDead(shared.pair, tag),
    };
  }

  checkAdmission(bitrate: number, excludingSessionId: string): void {
    this.#engine.checkAdmission(bitrate, excludingSessionId);
  }

  subscribe(listener: RtspBackendListener): () => void {
    const ended = (event: { id: string }): void => listener.sessionEnded(event.id);
    const failed = (event: SessionFailedEvent): void => listener.sessionFailed(event.id, `${event.scope} fault: ${event.reason}`);
    const closed = (event: { id: string }): void => listener.sessionClosed(event.id);
    this.#engine.on('session-ended', ended);
    this.#engine.on('session-failed', failed);
    this.#engine.on('session-closed', closed);
    return () => {
      this.#engine.off('session-ended', ended);
      this.#engine.off('session-failed', failed);
      this.#engine.off('session-closed', closed);
    };
  }
}
