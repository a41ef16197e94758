// The trick-play stream builder (src/mpegts/trick.ts) on the sample asset, for
// every Scale it serves: the stream it builds is decoded by ffmpeg without a
// warning, holds exactly the asset's key frames in play order, and its PCR
// advances at 1/|Scale| of media time; a datagram's bytes depend only on its
// number.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { buildAssetIndex } from './helpers/asset-index.js';
import { TS_PACKET_BYTES, packetPcr, packetPid } from '../src/mpegts/packet.js';
import {
  TRICK_PACKETS_PER_DATAGRAM, TRICK_SCALES, buildTrickDatagram, planTrick, trickDatagramCount, trickDeadlineTicks,
  type TrickKey, type TrickProgram, type TrickSource,
} from '../src/mpegts/trick.js';
import { runToString } from './helpers/run.js';

const SAMPLE = fileURLToPath(new URL('../../assets/sample.ts', import.meta.url));
const BYTES = fs.readFileSync(SAMPLE);
const { meta } = buildAssetIndex(SAMPLE);
const video = meta.streams.find((s) => s.kind === 'video')!;
const PROGRAM: TrickProgram = { programNumber: meta.programNumber, pmtPid: meta.pmtPid, videoPid: video.pid, videoStreamType: video.streamType };
const DATAGRAM_BYTES = TRICK_PACKETS_PER_DATAGRAM * TS_PACKET_BYTES;

/** The asset file as the source: the k-th video packet with a payload of a key frame's PES. */
const source: TrickSource = {
  copyVideoPacket(key: TrickKey, k: number, out: Uint8Array, at: number): boolean {
    let seen = 0;
    for (let p = key.packet; p < meta.packetCount; p++) {
      if (packetPid(BYTES, p * TS_PACKET_BYTES) !== video.pid || (BYTES[p * TS_PACKET_BYTES + 3] & 0x10) === 0) continue;
      if (seen++ === k) {
        out.set(BYTES.subarray(p * TS_PACKET_BYTES, (p + 1) * TS_PACKET_BYTES), at);
        return true;
      }
    }
    throw new Error(`key frame at ${key.packet} has no video packet ${k}`);
  },
};

function build(scale: number, startPacket: number): { stream: Buffer; plan: ReturnType<typeof planTrick> } {
  const plan = planTrick(meta.randomAccess, startPacket, scale);
  const count = trickDatagramCount(plan);
  const stream = Buffer.alloc(count * DATAGRAM_BYTES);
  for (let d = 0; d < count; d++) t0(buildTrickDatagram(plan, PROGRAM, d, source, stream, d * DATAGRAM_BYTES));
  return { stream, plan };
}

function t0(ok: boolean): void {
  if (!ok) throw new Error('the file source always has the bytes');
}

/** ffmpeg's framemd5 hashes of the video packets (the ES bytes, PES headers excluded). */
async function videoHashes(file: string): Promise<string[]> {
  const out = await runToString(['ffmpeg', '-hide_banner', '-v', 'error', '-i', file, '-map', '0:v', '-c', 'copy', '-f', 'framemd5', '-']);
  return out.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(',')[5].trim());
}

/** Packets whose continuity counter does not follow their PID's last one (+1 with a payload, the same without). */
function continuityErrors(stream: Buffer): string[] {
  const last = new Map<number, number>();
  const errors: string[] = [];
  for (let o = 0; o < stream.length; o += TS_PACKET_BYTES) {
    const pid = packetPid(stream, o);
    if (pid === 0x1fff) continue;
    const cc = stream[o + 3] & 0x0f;
    const payload = (stream[o + 3] & 0x10) !== 0;
    const before = last.get(pid);
    if (before !== undefined && cc !== (payload ? (before + 1) & 0x0f : before)) errors.push(`pid ${pid} packet ${o / TS_PACKET_BYTES}: ${before} then ${cc}`);
    last.set(pid, cc);
  }
  return errors;
}

let tmp: string;
let assetHashes: string[];
let keyIndexes: number[];

test.before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twinframe-trick-'));
  assetHashes = await videoHashes(SAMPLE);
  // Which of the asset's video packets (stream order) are the key frames: one PES each.
  const starts: number[] = [];
  for (let p = 0; p < meta.packetCount; p++) {
    const o = p * TS_PACKET_BYTES;
    if (packetPid(BYTES, o) === video.pid && (BYTES[o + 1] & 0x40) !== 0) starts.push(p);
  }
  keyIndexes = meta.randomAccess.map((k) => starts.indexOf(k.packet));
});

test.after.always(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

for (const scale of TRICK_SCALES) {
  test(`Scale ${scale}: the key frames in ${scale > 0 ? 'forward' : 'reverse'} order, decoded without a warning, PCR at 1/${Math.abs(scale)} of media time`, async (t) => {
    const start = scale > 0 ? 0 : meta.packetCount - 1;
    const { stream, plan } = build(scale, start);
    const file = path.join(tmp, `trick${scale}.ts`);
    fs.writeFileSync(file, stream);

    const warnings = await runToString(['ffmpeg', '-hide_banner', '-v', 'warning', '-i', file, '-f', 'null', '-']).catch((err: Error) => err.message);
    t.is(warnings.trim(), '', 'ffmpeg decodes it with no warning (continuity, PES, timing)');
    t.deepEqual(continuityErrors(stream), [], 'every PID\'s continuity counter runs on (ffmpeg checks it only at debug level)');
    const order = scale > 0 ? keyIndexes : [...keyIndexes].reverse();
    t.deepEqual(await videoHashes(file), order.map((i) => assetHashes[i]), 'exactly the key frames, in play order');
    const frames = JSON.parse(await runToString(['ffprobe', '-v', 'error', '-show_entries', 'frame=pict_type,pts', '-of', 'json', file])) as { frames: Array<{ pict_type: string; pts: number }> };
    t.deepEqual(frames.frames.map((f) => f.pict_type), order.map(() => 'I'), 'every decoded picture is an I picture');

    // PCR: one per group (and per copied video packet that had one); group to group at 1/|Scale| of media time.
    const pcrs: number[] = [];
    const offsets = new Set<number>();
    for (let o = 0; o < stream.length; o += TS_PACKET_BYTES) {
      const pcr = packetPcr(stream, o);
      if (pcr < 0) continue;
      pcrs.push(pcr);
      offsets.add(Math.round(pcr / 300 - trickDeadlineTicks(plan, Math.floor(o / DATAGRAM_BYTES))));
    }
    for (let i = 1; i < pcrs.length; i++) t.true(pcrs[i] >= pcrs[i - 1], `PCR never goes back (${i})`);
    const keys = plan.keys;
    const media = Math.abs(keys.at(-1)!.ticks - keys[0].ticks);
    const groupPcrs = frames.frames.map((f) => f.pts);
    const presented = groupPcrs.at(-1)! - groupPcrs[0];
    t.true(Math.abs(presented - media / Math.abs(scale)) <= 1, `the pictures span ${presented} ticks: ${media} ticks of media / ${Math.abs(scale)}`);
    t.is(offsets.size, 1, 'every PCR is its datagram\'s deadline (plus one constant): the stream is paced as it is timed');
  });
}

test('a trick datagram is a pure function of its number: built alone, in any order, it has the same bytes', (t) => {
  const { stream, plan } = build(-4, meta.packetCount - 1);
  const one = Buffer.alloc(DATAGRAM_BYTES);
  for (const d of [trickDatagramCount(plan) - 1, 0, 17, 3, 17]) {
    t0(buildTrickDatagram(plan, PROGRAM, d, source, one, 0));
    t.true(one.equals(stream.subarray(d * DATAGRAM_BYTES, (d + 1) * DATAGRAM_BYTES)), `datagram ${d}`);
  }
});

test('deadlines never go back and a group starts when its key frame is due', (t) => {
  const { plan } = build(8, 0);
  let last = -1;
  for (let d = 0; d < trickDatagramCount(plan); d++) {
    const at = trickDeadlineTicks(plan, d);
    t.true(at >= last, `datagram ${d}`);
    last = at;
  }
  for (let j = 0; j < plan.keys.length; j++) {
    t.is(trickDeadlineTicks(plan, plan.firstDatagram[j]), (plan.keys[j].ticks - plan.keys[0].ticks) / 8);
  }
});
