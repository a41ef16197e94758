// A range of UDP ports for a server's configured serverPortRange, checked free
// on 127.0.0.1 by binding each one exclusively. Taken below the kernel's
// ephemeral range, so no port-0 bind of another process is handed one, and
// outside the default 30000–30999 other servers on this machine use.

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => { socket.close(); resolve(false); });
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports starting at an even one. */
export async function freeUdpPortRange(count: number): Promise<{ first: number; last: number }> {
  const ephemeralFirst = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const top = Math.min(ephemeralFirst, 30000) - count;
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = 2 * Math.floor((20000 + Math.random() * (top - 20000)) / 2);
    let free = true;
    for (let p = first; p < first + count && free; p++) free = await bindable(p);
    if (free) return { first, last: first + count - 1 };
  }
  throw new Error(`no ${count} free consecutive UDP ports below ${top}`);
}
