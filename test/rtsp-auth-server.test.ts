// Authentication on a whole server: ffmpeg, a real player, logs in with Digest
// credentials in its URL and plays, and is refused (401) without them or with a
// wrong password; a Digest header replayed on another connection, or again on
// its own, is refused (raw RTSP over a socket). Failed logins are in the metrics.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import type { TwinframeConfigInput } from '../src/config/schema.js';
import { digestHa1, digestResponse, hashBasicSecret } from '../src/rtsp/auth.js';
import { leakCheck } from './helpers/leak-check.js';
import { startMediaServer } from './helpers/media-server.js';
import { RtspClient } from './helpers/rtsp-client.js';
import { runCapture } from './helpers/run.js';

const USER = 'alice';
const PASSWORD = 'open-sesame-42';
const REALM = 'twinframe';

test.before(() => {
  const probe = spawnSync('ffmpeg', ['-hide_banner', '-version']);
  if (probe.error || probe.status !== 0) throw new Error('ffmpeg is required by these tests: apt-get install ffmpeg');
});

async function authConfig(): Promise<TwinframeConfigInput> {
  return {
    metrics: { listen: '127.0.0.1:0' },
    auth: {
      enabled: true,
      // The wrong-password runs below must not lock 127.0.0.1 out of the later ones.
      maxFailures: 100,
      users: [{
        name: USER, realm: REALM, md5: digestHa1('MD5', USER, REALM, PASSWORD), sha256: digestHa1('SHA-256', USER, REALM, PASSWORD), basic: await hashBasicSecret(PASSWORD),
      }],
    },
  };
}

/** ffmpeg as the whole RTSP client, recording `seconds` of the asset as per-packet hashes on stdout. */
function ffmpegPlay(url: string, seconds: number, transport: 'udp' | 'tcp' = 'udp'): ReturnType<typeof runCapture> {
  return runCapture(['ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'info', '-rtsp_transport', transport, '-i', url,
    '-t', String(seconds), '-map', '0', '-c', 'copy', '-f', 'framemd5', '-'], { limitMs: 30_000 });
}

test.serial('ffmpeg plays with Digest credentials (over UDP and interleaved) and is refused with 401 without them or with a wrong password', async (t) => {
  t.timeout(90_000);
  const { server } = await startMediaServer(t, ['sample.ts'], await authConfig());
  const at = (auth: string): string => `rtsp://${auth}127.0.0.1:${server.rtsp.port}/sample.ts`;

  const played = await ffmpegPlay(at(`${USER}:${PASSWORD}@`), 2);
  t.is(played.code, 0, played.stderr.slice(-2000));
  const packets = played.stdout.split('\n').filter((l) => /^\d+,/.test(l));
  t.true(packets.length >= 40, `ffmpeg received ${packets.length} packets`);
  const overTcp = await ffmpegPlay(at(`${USER}:${PASSWORD}@`), 1, 'tcp');
  t.is(overTcp.code, 0, overTcp.stderr.slice(-2000));
  t.true(overTcp.stdout.split('\n').filter((l) => /^\d+,/.test(l)).length >= 20, 'and over the RTSP connection (interleaved)');

  const anonymous = await ffmpegPlay(at(''), 2);
  t.not(anonymous.code, 0);
  t.regex(anonymous.stderr, /401 Unauthorized/);

  const before = server.auth.counters().failedLogins;
  const wrong = await ffmpegPlay(at(`${USER}:not-the-password@`), 2);
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /401 Unauthorized/);
  t.is(server.auth.counters().failedLogins, before + 1, 'the wrong password is counted once');
  const scraped = await (await fetch(`http://127.0.0.1:${server.metrics!.port}/metrics`)).text();
  t.regex(scraped, new RegExp(`^twinframe_rtsp_auth_failures_total\\{kind="failed"\\} ${before + 1}$`, 'm'), 'in the metrics');
  t.is(server.rtsp.sessions().length, 0, 'no session was set up for the refused players');
});

/** The nonce of a 401's MD5 challenge (the last Digest one). */
function md5Nonce(challenges: readonly string[]): string {
  const md5 = challenges.find((c) => c.includes('algorithm=MD5'));
  return /nonce="([^"]+)"/.exec(md5 ?? '')![1];
}

test.serial('a Digest header is refused when replayed on another connection or with a nonce count already used', async (t) => {
  t.timeout(60_000);
  const { server } = await startMediaServer(t, ['sample.ts'], await authConfig());
  const viewer = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => viewer.close());
  const uri = viewer.url('/sample.ts');

  const challenge = await viewer.request('DESCRIBE', '/sample.ts');
  t.is(challenge.status, 401);
  const challenges = challenge.headers.getAll('www-authenticate');
  t.is(challenges.length, 2, 'one WWW-Authenticate per algorithm');
  const nonce = md5Nonce(challenges);
  const ha1 = digestHa1('MD5', USER, REALM, PASSWORD);
  const response = digestResponse({ algorithm: 'MD5', ha1, nonce, method: 'DESCRIBE', uri, qop: { nc: '00000001', cnonce: 'c0ffee' } });
  const authorization = `Digest username="${USER}", realm="${REALM}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"`;
  t.is((await viewer.request('DESCRIBE', '/sample.ts', { headers: { Authorization: authorization } })).status, 200);

  const again = await viewer.request('DESCRIBE', '/sample.ts', { headers: { Authorization: authorization } });
  t.is(again.status, 401, 'the same nonce count twice');
  t.regex(again.headers.get('www-authenticate') ?? '', /stale=TRUE/);

  const thief = await RtspClient.connect({ port: server.rtsp.port });
  t.teardown(() => thief.close());
  const replayed = await thief.request('DESCRIBE', '/sample.ts', { headers: { Authorization: authorization } });
  t.is(replayed.status, 401, 'the header captured from another connection');
  t.is(replayed.headers.get('content-type'), undefined, 'and no description');
});

leakCheck(test);
