// The content check an index carries of its asset: SHA-256 over the asset's
// size, its first MiB and its last MiB. Size and mtime alone can be forged
// (touch -d) and say nothing about which bytes an index describes; hashing the
// whole asset would cost a full read at every open. Two MiB read per check is
// cheap at open and catches an index planted for another file or a file
// rewritten in place with its mtime restored at either end.

import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** Bytes hashed at each end of the asset. */
export const CONTENT_CHECK_SPAN = 1 << 20;

function readAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw Object.assign(new Error(`asset ended at byte ${position + done} while checking its content`), { code: 'EIO' });
    done += n;
  }
}

/** Hex SHA-256 of the asset open on `fd`, `size` bytes long (synchronous: index worker only). */
export function assetContentCheck(fd: number, size: number): string {
  const hash = createHash('sha256').update(`${size}\n`);
  const headLength = Math.min(size, CONTENT_CHECK_SPAN);
  const tailStart = Math.max(headLength, size - CONTENT_CHECK_SPAN);
  const buf = Buffer.allocUnsafe(CONTENT_CHECK_SPAN);
  readAll(fd, buf.subarray(0, headLength), 0);
  hash.update(buf.subarray(0, headLength));
  readAll(fd, buf.subarray(0, size - tailStart), tailStart);
  hash.update(buf.subarray(0, size - tailStart));
  return hash.digest('hex');
}
