// The content check an index carries of its asset: SHA-256 over the asset's
// size, its first MiB and its last MiB. Size and mtime alone can be forged
// (touch -d) and say nothing about which bytes an index describes; hashing the
// whole asset would cost a full read at every open. Two MiB read per check is
// cheap at open and catches an index planted for another file or a file
// rewritten in place with its mtime restored at either end.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { TwinframeError } from '../errors.js';

/** Bytes hashed at each end of the asset. */
export const CONTENT_CHECK_SPAN = 1 << 20;

/** Reads `buf` full from `position`, or refuses the asset (a read error, or it shrank) with errno details. */
function readAll(fd: number, file: string, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      throw new TwinframeError('TF_ASSET_UNREADABLE', `${file}: read error at byte ${position + done} (${errno ?? (err as Error).message})`, { path: file, errno, offset: position + done });
    }
    if (n === 0) throw new TwinframeError('TF_ASSET_UNREADABLE', `${file}: asset ended at byte ${position + done} while its content was checked`, { path: file, errno: 'EIO', offset: position + done });
    done += n;
  }
}

/** Hex SHA-256 of the asset open on `fd`, `size` bytes long, named `file` in refusals (synchronous: index worker only). */
export function assetContentCheck(fd: number, size: number, file: string): string {
  const hash = createHash('sha256').update(`${size}\n`);
  const headLength = Math.min(size, CONTENT_CHECK_SPAN);
  const tailStart = Math.max(headLength, size - CONTENT_CHECK_SPAN);
  const buf = Buffer.allocUnsafe(CONTENT_CHECK_SPAN);
  readAll(fd, file, buf.subarray(0, headLength), 0);
  hash.update(buf.subarray(0, headLength));
  readAll(fd, file, buf.subarray(0, size - tailStart), tailStart);
  hash.update(buf.subarray(0, size - tailStart));
  return hash.digest('hex');
}
