// A looped broadcast's loop header (src/mpegts/loop.ts LoopScanner) covers the
// PIDs a player follows: the PSI/SI PIDs (0x00-0x1F), the PMTs the PAT names and
// the PIDs they declare, not every PID that appears (up to 8191, 1170 header
// datagrams a pass). A synthetic stream: one program, SI, and 40 stray PIDs.

import test from 'ava';
import { LoopScanner, loopHeaderDatagrams } from '../src/mpegts/loop.js';
import { TS_PACKET_BYTES } from '../src/mpegts/packet.js';
import { crc32Mpeg2 } from '../src/mpegts/psi.js';

/** A long-form section with its CRC. */
function section(tableId: number, idExtension: number, body: number[]): number[] {
  const length = 5 + body.length + 4;
  const bytes = [tableId, 0xb0 | (length >> 8), length & 0xff, idExtension >> 8, idExtension & 0xff, 0xc1, 0, 0, ...body];
  const crc = crc32Mpeg2(Uint8Array.from(bytes));
  return [...bytes, crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff];
}

/** One TS packet of `pid`: a section (pointer_field 0) or filler payload, continuity counter `cc`. */
function packet(pid: number, cc: number, psi?: number[]): Buffer {
  const p = Buffer.alloc(TS_PACKET_BYTES, 0xff);
  p[0] = 0x47;
  p[1] = (psi ? 0x40 : 0) | (pid >> 8);
  p[2] = pid & 0xff;
  p[3] = 0x10 | (cc & 0x0f);
  if (psi) Buffer.from([0, ...psi]).copy(p, 4);
  return p;
}

test('the loop header covers the PSI, the PMT and the PIDs it declares, not stray PIDs', (t) => {
  const pat = section(0x00, 1, [0, 1, 0xe0 | 0x10, 0x00]);
  const pmt = section(0x02, 1, [0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00, 0x06, 0xe1, 0x02, 0xf0, 0x00]);
  const packets = [packet(0, 3, pat), packet(0x1000, 5, pmt), packet(0x11, 7)];
  for (let i = 0; i < 40; i++) packets.push(packet(0x200 + i, i)); // before the streams: the scanner cannot know yet what is declared
  packets.push(packet(0x100, 9), packet(0x101, 2)); // 0x102 is declared but never appears: nothing to continue
  const scanner = new LoopScanner(0x100);
  scanner.push(Buffer.concat(packets));
  const program = scanner.program(0);
  t.deepEqual(program.pids, [0, 0x11, 0x100, 0x101, 0x1000]);
  t.deepEqual(program.headerCc, [2, 6, 8, 1, 4], 'each the counter before its PID\'s first packet');
  t.is(loopHeaderDatagrams(program), 1, 'one header datagram a pass, not seven');
});
