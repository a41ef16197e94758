// Run in a child process: open --count TCP connections to 127.0.0.1:--port
// from 127.0.0.1 and hold them; print {"accepted": n, "refused": n} once each has
// either been answered 503 and closed (refused), or stayed 3 s without that
// answer (accepted, whatever happens to it later); then hold the open ones until
// stdin closes. The flood's file descriptors are this process's, not the test's.

import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, count: { type: 'string' } } });
const port = Number(values.port);
const count = Number(values.count);
const sockets: net.Socket[] = [];
let refused = 0;
let accepted = 0;
await Promise.all(Array.from({ length: count }, () => new Promise<void>((resolve) => {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  let answered = false;
  socket.on('data', (d: Buffer) => { if (d.toString('latin1').startsWith('RTSP/1.0 503')) answered = true; });
  socket.on('error', () => {});
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    if (answered) refused++;
    else accepted++;
    resolve();
  };
  socket.on('close', settle);
  setTimeout(settle, 3000);
})));
process.stdout.write(`${JSON.stringify({ accepted, refused })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
