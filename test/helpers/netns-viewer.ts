// A viewer on "another host": run inside a test's network namespace
// (ip netns exec <ns> node netns-viewer.js …). It plays an asset over RTSP with
// RTP/AVP over UDP for some seconds, keeping the session alive as players do,
// then tears it down. It writes every RTP datagram it received to <out>
// (each as a u32 little-endian length, then the bytes) and prints one JSON line:
// the RTSP statuses and headers, and where the datagrams came from.
//
//   node netns-viewer.js <server address> <rtsp port> <asset path> <seconds> <own address> <out>

import dgram from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { RtspClient } from './rtsp-client.js';

const [host, port, asset, seconds, ownAddress, out] = process.argv.slice(2);
if (out === undefined) throw new Error('usage: netns-viewer <server> <port> <asset> <seconds> <own address> <out>');

function bind(socket: dgram.Socket, p: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(p, ownAddress, () => { socket.off('error', reject); resolve(); });
  });
}

/** An even RTP port and the RTCP port above it. */
async function portPair(): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket }> {
  for (;;) {
    const rtp = dgram.createSocket('udp4');
    await bind(rtp, 0);
    const p = rtp.address().port;
    if (p % 2 === 0 && p < 65535) {
      const rtcp = dgram.createSocket('udp4');
      try {
        await bind(rtcp, p + 1);
        return { rtp, rtcp };
      } catch {
        rtcp.close();
      }
    }
    rtp.close();
  }
}

const { rtp, rtcp } = await portPair();
rtp.setRecvBufferSize(4 * 1024 * 1024);
const datagrams: Buffer[] = [];
const sources: Record<string, number> = {};
rtp.on('message', (data, rinfo) => {
  datagrams.push(data);
  const from = `${rinfo.address}:${rinfo.port}`;
  sources[from] = (sources[from] ?? 0) + 1;
});
rtcp.on('message', () => {});

// Generous: the server may index the asset at this SETUP, on a busy machine.
const client = await RtspClient.connect({ host, port: Number(port), timeoutMs: 20_000 });
const url = `rtsp://${host}:${port}${asset}`;
const describe = await client.describe(url);
const setup = await client.setup(`${url}/track1`, `RTP/AVP;unicast;client_port=${rtp.address().port}-${rtcp.address().port}`);
const play = setup.status === 200 ? await client.play(`${url}/`) : undefined;
if (play?.status === 200) {
  const until = Date.now() + Number(seconds) * 1000;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    await client.getParameter(url);
  }
  await client.pause(url);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the last datagrams in flight
}
const teardown = setup.status === 200 ? await client.teardown(url) : undefined;
await client.close();
rtp.close();
rtcp.close();

const lengths = Buffer.alloc(4 * datagrams.length);
const parts: Buffer[] = [];
datagrams.forEach((d, i) => {
  lengths.writeUInt32LE(d.length, 4 * i);
  parts.push(lengths.subarray(4 * i, 4 * i + 4), d);
});
await writeFile(out, Buffer.concat(parts));
process.stdout.write(`${JSON.stringify({
  describe: describe.status,
  setup: setup.status,
  transport: setup.headers.get('transport'),
  play: play?.status,
  rtpInfo: play?.headers.get('rtp-info'),
  teardown: teardown?.status,
  received: datagrams.length,
  sources,
})}\n`);
