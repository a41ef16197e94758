// Run in a child process: open --count TCP connections to 127.0.0.1:--port
// from 127.0.0.1 and hold them; print {"open": n, "refused": n} once each has
// either been answered (503) and closed, or stayed open for a second; then hold
// the open ones until stdin closes. The flood's file descriptors are this
// process's, not the test's.

import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, count: { type: 'string' } } });
const port = Number(values.port);
const count = Number(values.count);
const sockets: net.Socket[] = [];
let refused = 0;
await Promise.all(Array.from({ length: count }, () => new Promise<void>((resolve) => {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  let answered = false;
  socket.on('data', (d: Buffer) => { if (d.toString('latin1').startsWith('RTSP/1.0 503')) answered = true; });
  socket.on('error', () => {});
  socket.on('close', () => {
    if (answered) refused++;
    resolve();
  });
  setTimeout(resolve, 1000);
})));
const open = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
process.stdout.write(`${JSON.stringify({ open, refused })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
