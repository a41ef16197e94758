// The Transport header: one table of wire forms shared by the parse and the
// serialize tests, then the choice of a transport and the reply spec.

import test from 'ava';

import { TwinframeError, isTwinframeError } from '../src/errors.js';
import {
  chooseTransport,
  parseTransport,
  serializeTransport,
  serializeTransportSpec,
  transportReply,
  type TransportSpec,
} from '../src/rtsp/headers/transport.js';

interface Case {
  readonly name: string;
  /** Canonical wire form: parse(wire) gives specs, serialize(specs) gives wire. */
  readonly wire: string;
  readonly specs: TransportSpec[];
}

const CASES: Case[] = [
  {
    name: 'ffmpeg over UDP',
    wire: 'RTP/AVP/UDP;unicast;client_port=5000-5001',
    specs: [{ protocol: 'RTP', profile: 'AVP', lowerTransport: 'UDP', delivery: 'unicast', clientPort: { first: 5000, last: 5001 } }],
  },
  {
    name: 'live555 and VLC',
    wire: 'RTP/AVP;unicast;client_port=5000-5001',
    specs: [{ protocol: 'RTP', profile: 'AVP', delivery: 'unicast', clientPort: { first: 5000, last: 5001 } }],
  },
  {
    name: 'a list preferring interleaved TCP',
    wire: 'RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=5000-5001',
    specs: [
      { protocol: 'RTP', profile: 'AVP', lowerTransport: 'TCP', delivery: 'unicast', interleaved: { first: 0, last: 1 } },
      { protocol: 'RTP', profile: 'AVP', delivery: 'unicast', clientPort: { first: 5000, last: 5001 } },
    ],
  },
  {
    name: 'cable VOD MPEG-TS over UDP',
    wire: 'MP2T/H2221/UDP;unicast;destination=10.1.2.3;client_port=6000',
    specs: [{ protocol: 'MP2T', profile: 'H2221', lowerTransport: 'UDP', delivery: 'unicast', destination: '10.1.2.3', clientPort: { first: 6000 } }],
  },
  {
    name: 'raw UDP',
    wire: 'RAW/RAW/UDP;unicast;destination=10.1.2.3;client_port=6000',
    specs: [{ protocol: 'RAW', profile: 'RAW', lowerTransport: 'UDP', delivery: 'unicast', destination: '10.1.2.3', clientPort: { first: 6000 } }],
  },
  {
    name: 'a server reply',
    wire: 'RTP/AVP;unicast;destination=127.0.0.1;source=127.0.0.1;client_port=5000-5001;server_port=6970-6971;ssrc=0000BEEF;mode=PLAY',
    specs: [
      {
        protocol: 'RTP',
        profile: 'AVP',
        delivery: 'unicast',
        destination: '127.0.0.1',
        source: '127.0.0.1',
        clientPort: { first: 5000, last: 5001 },
        serverPort: { first: 6970, last: 6971 },
        ssrc: 0xbeef,
        mode: ['PLAY'],
      },
    ],
  },
  {
    name: 'multicast with ttl and port',
    wire: 'RTP/AVP;multicast;destination=224.2.0.1;ttl=16;port=3456-3457',
    specs: [{ protocol: 'RTP', profile: 'AVP', delivery: 'multicast', destination: '224.2.0.1', ttl: 16, port: { first: 3456, last: 3457 } }],
  },
  {
    name: 'a quoted mode list with a comma',
    wire: 'RTP/AVP;unicast;client_port=5000-5001;mode="PLAY,RECORD"',
    specs: [{ protocol: 'RTP', profile: 'AVP', delivery: 'unicast', clientPort: { first: 5000, last: 5001 }, mode: ['PLAY', 'RECORD'] }],
  },
  {
    name: 'append and layers',
    wire: 'RTP/AVP;multicast;append;layers=2',
    specs: [{ protocol: 'RTP', profile: 'AVP', delivery: 'multicast', append: true, layers: 2 }],
  },
  {
    name: 'unknown parameters kept in order',
    wire: 'RTP/AVP;unicast;client_port=5000-5001;x-foo=bar;x-flag',
    specs: [
      {
        protocol: 'RTP',
        profile: 'AVP',
        delivery: 'unicast',
        clientPort: { first: 5000, last: 5001 },
        extra: [
          ['x-foo', 'bar'],
          ['x-flag', undefined],
        ],
      },
    ],
  },
  {
    name: 'an SSRC with all 32 bits',
    wire: 'RTP/AVP;unicast;client_port=5000;ssrc=FFFFFFFF',
    specs: [{ protocol: 'RTP', profile: 'AVP', delivery: 'unicast', clientPort: { first: 5000 }, ssrc: 0xffffffff }],
  },
];

for (const c of CASES) {
  test(`Transport parses ${c.name}`, (t) => {
    t.deepEqual(parseTransport(c.wire), c.specs);
  });
  test(`Transport serializes ${c.name}`, (t) => {
    t.is(serializeTransport(c.specs), c.wire);
  });
}

/** Inputs that are not in canonical form: parsed, then written canonically. */
const LENIENT: Array<[name: string, input: string, canonical: string]> = [
  ['lower-case names', 'rtp/avp/udp;Unicast;CLIENT_PORT=5000-5001', 'RTP/AVP/UDP;unicast;client_port=5000-5001'],
  ['spaces around separators', ' RTP/AVP ; unicast ; client_port = 5000-5001 , RAW/RAW/UDP;client_port=6000 ', 'RTP/AVP;unicast;client_port=5000-5001,RAW/RAW/UDP;client_port=6000'],
  ['a short SSRC', 'RTP/AVP;ssrc=1a', 'RTP/AVP;ssrc=0000001A'],
  ['empty parameters and a trailing semicolon', 'RTP/AVP;;unicast;client_port=5000;', 'RTP/AVP;unicast;client_port=5000'],
  ['a lower-case unquoted mode', 'RTP/AVP;unicast;mode=play', 'RTP/AVP;unicast;mode=PLAY'],
  ['a lone destination', 'RTP/AVP;unicast;destination;client_port=5000', 'RTP/AVP;unicast;client_port=5000'],
  ['an empty spec in the list', 'RTP/AVP;client_port=5000,,', 'RTP/AVP;client_port=5000'],
  ['unicast given twice', 'RTP/AVP;unicast;unicast', 'RTP/AVP;unicast'],
];

for (const [name, input, canonical] of LENIENT) {
  test(`Transport accepts ${name}`, (t) => {
    t.is(serializeTransport(parseTransport(input)), canonical);
  });
}

const MALFORMED: Array<[string, string]> = [
  ['an empty value', ''],
  ['a protocol without profile', 'RTP;unicast'],
  ['four protocol parts', 'RTP/AVP/UDP/X;unicast'],
  ['a port that is not a number', 'RTP/AVP;client_port=abc'],
  ['a port above 65535', 'RTP/AVP;client_port=70000'],
  ['a port with six digits', 'RTP/AVP;client_port=000001'],
  ['three ports', 'RTP/AVP;client_port=1-2-3'],
  ['a client_port without value', 'RTP/AVP;client_port'],
  ['an SSRC that is not hex', 'RTP/AVP;ssrc=XYZ'],
  ['an SSRC of nine digits', 'RTP/AVP;ssrc=123456789'],
  ['a ttl above 255', 'RTP/AVP;multicast;ttl=256'],
  ['both unicast and multicast', 'RTP/AVP;unicast;multicast'],
  ['an unterminated quote', 'RTP/AVP;mode="PLAY'],
  ['an interleaved channel above 255', 'RTP/AVP/TCP;interleaved=0-300'],
  ['a unicast with a value', 'RTP/AVP;unicast=1'],
  ['a parameter name with a space', 'RTP/AVP;client port=5000'],
];

for (const [name, input] of MALFORMED) {
  test(`Transport with ${name} is a bad request`, (t) => {
    const err = t.throws(() => parseTransport(input));
    t.true(isTwinframeError(err, 'TF_RTSP_BAD_REQUEST'), String(err));
  });
}

test('the first supported spec is chosen: interleaved TCP when it comes first', (t) => {
  const chosen = chooseTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=4-5,RTP/AVP;unicast;client_port=5000-5001'));
  t.like(chosen, { kind: 'rtp', lower: 'tcp', channels: { rtp: 4, rtcp: 5 } });
  t.is(chosen.spec.lowerTransport, 'TCP');
});

test('without the addon, interleaved TCP is skipped with the reason given', (t) => {
  const chosen = chooseTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=5000-5001'), 'no addon');
  t.like(chosen, { kind: 'rtp', lower: 'udp', clientRtpPort: 5000, clientRtcpPort: 5001 });
  t.is(chosen.lower === 'udp' ? chosen.destination : 'tcp', undefined);
  t.is(chosen.spec.lowerTransport, undefined);
  const err = t.throws<TwinframeError>(() => chooseTransport(parseTransport('RTP/AVP/TCP;interleaved=0-1'), 'no addon'));
  t.deepEqual(err?.details.reasons, ['no addon']);
});

test('interleaved TCP without channels gets 0-1; channels must be consecutive', (t) => {
  t.like(chooseTransport(parseTransport('RTP/AVP/TCP;unicast')), { lower: 'tcp', channels: { rtp: 0, rtcp: 1 } });
  const err = t.throws<TwinframeError>(() => chooseTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=0-3')));
  t.deepEqual(err?.details.reasons, ['interleaved channels must be two consecutive numbers']);
  const reply = transportReply(chooseTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3;mode=play')), { serverRtpPort: 0, ssrc: 0xabc });
  t.is(serializeTransportSpec(reply), 'RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00000ABC;mode=PLAY');
});

test('a single client port gives no RTCP port', (t) => {
  const chosen = chooseTransport(parseTransport('RTP/AVP/UDP;unicast;client_port=5000'));
  t.is(chosen.kind, 'rtp');
  t.is(chosen.lower === 'udp' ? chosen.clientRtpPort : 0, 5000);
  t.false('clientRtcpPort' in chosen);
});

test('MP2T/H2221/UDP and RAW/RAW/UDP are raw UDP with their destination and no RTCP', (t) => {
  for (const proto of ['MP2T/H2221/UDP', 'RAW/RAW/UDP']) {
    const chosen = chooseTransport(parseTransport(`${proto};unicast;destination=10.1.2.3;client_port=6000-6001`));
    t.like(chosen, { kind: 'udp', clientRtpPort: 6000, destination: '10.1.2.3' }, proto);
    t.false('clientRtcpPort' in chosen, proto);
  }
});

test('a spec without unicast or multicast is taken as unicast', (t) => {
  t.is(chooseTransport(parseTransport('RTP/AVP;client_port=5000-5001')).kind, 'rtp');
});

test('a spec asking for PLAY among other modes is accepted', (t) => {
  t.is(chooseTransport(parseTransport('RTP/AVP;unicast;client_port=5000-5001;mode="RECORD,PLAY"')).kind, 'rtp');
});

const UNSUPPORTED: Array<[string, string, string]> = [
  ['multicast', 'RTP/AVP;multicast;destination=224.2.0.1;port=3456-3457', 'multicast is not supported'],
  ['no client port', 'RTP/AVP;unicast', 'no client_port'],
  ['client port 0', 'RTP/AVP;unicast;client_port=0-1', 'client_port out of 1..65535'],
  ['an RTCP port of 0', 'RTP/AVP;unicast;client_port=5000-0', 'client_port out of 1..65535'],
  ['RECORD mode', 'RTP/AVP;unicast;client_port=5000-5001;mode=record', 'mode RECORD is not supported'],
  ['a QAM transport', 'MP2T/DVBC/QAM;unicast;client=00AF123456DE;qam_name=Chicago.SouthBend.5', 'MP2T/DVBC/QAM is not supported'],
  ['MPEG-TS over TCP', 'MP2T/H2221/TCP;unicast', 'MP2T/H2221/TCP is not supported'],
];

for (const [name, input, reason] of UNSUPPORTED) {
  test(`a Transport offering only ${name} is answered with 461`, (t) => {
    const err = t.throws<TwinframeError>(() => chooseTransport(parseTransport(input)), { instanceOf: TwinframeError });
    t.is(err?.code, 'TF_RTSP_UNSUPPORTED_TRANSPORT');
    t.is(err?.rtspStatus, 461);
    t.deepEqual(err?.details.reasons, [reason]);
  });
}

test('every refused spec contributes a reason', (t) => {
  const err = t.throws<TwinframeError>(() => chooseTransport(parseTransport('RTP/AVP/TCP;interleaved=0-3,RTP/AVP;multicast')));
  t.deepEqual(err?.details.reasons, ['interleaved channels must be two consecutive numbers', 'multicast is not supported']);
});

test('the reply spec echoes the client spelling and adds server ports and SSRC', (t) => {
  const rtp = chooseTransport(parseTransport('RTP/AVP/UDP;unicast;client_port=5000-5001;mode=PLAY'));
  t.is(
    serializeTransportSpec(transportReply(rtp, { serverRtpPort: 6970, serverRtcpPort: 6971, ssrc: 0x12345678 })),
    'RTP/AVP/UDP;unicast;client_port=5000-5001;server_port=6970-6971;ssrc=12345678;mode=PLAY',
  );
  const raw = chooseTransport(parseTransport('MP2T/H2221/UDP;unicast;destination=10.1.2.3;client_port=6000'));
  t.is(
    serializeTransportSpec(transportReply(raw, { serverRtpPort: 6970, serverRtcpPort: 6971, ssrc: 1, source: '10.0.0.1' })),
    'MP2T/H2221/UDP;unicast;destination=10.1.2.3;source=10.0.0.1;client_port=6000;server_port=6970',
  );
});
