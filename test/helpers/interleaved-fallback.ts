// Run in a child process with TWINFRAME_NATIVE=off: a whole server without the
// addon, and a player that offers RTP over TCP first, then UDP. Prints what the
// server answered to each SETUP as JSON.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { wireAddon } from '../../src/shared/wire.js';
import { SAMPLE_ASSET } from './engine-fixture.js';
import { RtspClient, UdpReceiver } from './rtsp-client.js';

const dir = await mkdtemp(path.join(tmpdir(), 'twinframe-interleaved-fallback-'));
const config = parseConfig({
  media: { mounts: [{ prefix: '', dir: path.dirname(SAMPLE_ASSET) }], cacheDir: path.join(dir, 'cache') },
  admin: { socketPath: path.join(dir, 'admin.sock') },
  log: { level: 'silent' },
});
const server = await startServer({ config, configPath: undefined, logger: silentLogger, rtsp: { port: 0 } });
const client = await RtspClient.connect({ port: server.rtsp.port });
const receiver = await UdpReceiver.open();
try {
  const tcpOnly = await client.setup('/sample.ts', 'RTP/AVP/TCP;unicast;interleaved=0-1');
  const either = await client.setup('/sample.ts', `RTP/AVP/TCP;unicast;interleaved=0-1,${receiver.transportHeader()}`);
  process.stdout.write(JSON.stringify({
    addonLoaded: wireAddon !== undefined,
    tcpOnly: tcpOnly.status,
    either: either.status,
    eitherTransport: either.headers.get('transport'),
  }));
} finally {
  await client.close();
  await receiver.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
