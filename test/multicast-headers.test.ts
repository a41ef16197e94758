// The SDP and Transport of a multicast broadcast (issue 16, item 3): what a
// viewer's SETUP may join with, and what the replies say.

import test from 'ava';
import { isTwinframeError } from '../src/errors.js';
import { chooseMulticastTransport, multicastTransportReply, parseTransport, serializeTransportSpec, type MulticastGroup } from '../src/rtsp/headers/transport.js';
import { buildSdp } from '../src/rtsp/sdp.js';

const rtp: MulticastGroup = { group: '239.1.2.3', port: 5004, ttl: 4, kind: 'rtp' };
const udp: MulticastGroup = { group: '239.1.2.3', port: 5004, ttl: 4, kind: 'udp' };

function joined(header: string, group: MulticastGroup): string {
  return serializeTransportSpec(multicastTransportReply(group, chooseMulticastTransport(parseTransport(header), group)));
}

function refusal(header: string, group: MulticastGroup): string {
  try {
    chooseMulticastTransport(parseTransport(header), group);
  } catch (err) {
    if (isTwinframeError(err) && err.code === 'TF_RTSP_UNSUPPORTED_TRANSPORT') return err.message;
    throw err;
  }
  return 'joined';
}

test('an RTP broadcast is joined with RTP/AVP;multicast, or RTP/AVP naming no delivery and no client port, in the client\'s spelling', (t) => {
  t.is(joined('RTP/AVP;multicast', rtp), 'RTP/AVP;multicast;destination=239.1.2.3;ttl=4;port=5004-5005');
  t.is(joined('RTP/AVP/UDP;multicast;mode=play', rtp), 'RTP/AVP/UDP;multicast;destination=239.1.2.3;ttl=4;port=5004-5005;mode=PLAY');
  t.is(joined('RTP/AVP', rtp), 'RTP/AVP;multicast;destination=239.1.2.3;ttl=4;port=5004-5005');
  t.is(joined('RTP/AVP;unicast;client_port=6000-6001,RTP/AVP;multicast', rtp), 'RTP/AVP;multicast;destination=239.1.2.3;ttl=4;port=5004-5005', 'the first spec that joins');
});

test('what cannot join an RTP broadcast is refused with the reason: unicast, client ports, TCP, another protocol, RECORD', (t) => {
  t.regex(refusal('RTP/AVP;unicast;client_port=6000-6001', rtp), /multicast only: join 239\.1\.2\.3 with RTP\/AVP;multicast/);
  t.regex(refusal('RTP/AVP;client_port=6000-6001', rtp), /multicast only/);
  t.regex(refusal('RTP/AVP/TCP;interleaved=0-1', rtp), /RTP\/AVP\/TCP cannot join/);
  t.regex(refusal('MP2T/H2221/UDP;multicast', rtp), /MP2T\/H2221\/UDP cannot join/);
  t.regex(refusal('RTP/AVP;multicast;mode=RECORD', rtp), /mode RECORD/);
});

test('a udp (bare MPEG-TS) broadcast is joined with MP2T/H2221/UDP or RAW/RAW/UDP on one port; the 461 offer is the broadcast\'s own transport', (t) => {
  t.is(joined('RAW/RAW/UDP;multicast', udp), 'RAW/RAW/UDP;multicast;destination=239.1.2.3;ttl=4;port=5004');
  t.regex(refusal('RTP/AVP;multicast', udp), /it is MP2T\/H2221\/UDP;multicast/);
  t.is(serializeTransportSpec(multicastTransportReply(udp)), 'MP2T/H2221/UDP;multicast;destination=239.1.2.3;ttl=4;port=5004');
  t.is(serializeTransportSpec(multicastTransportReply(rtp)), 'RTP/AVP;multicast;destination=239.1.2.3;ttl=4;port=5004-5005');
});

test('a broadcast\'s SDP: the group and TTL in c=, its port in m=, an open range from now; udp is "udp MP2T" without rtpmap', (t) => {
  const base = { sessionId: 1, serverAddress: '127.0.0.1', name: 'news', durationSeconds: 12 };
  const sdp = buildSdp({ ...base, multicast: { group: '239.1.2.3', ttl: 4, port: 5004, transport: 'rtp' } });
  t.regex(sdp, /\r\nc=IN IP4 239\.1\.2\.3\/4\r\n/);
  t.regex(sdp, /\r\na=range:npt=now-\r\n/, 'a broadcast has no duration to give');
  t.regex(sdp, /\r\nm=video 5004 RTP\/AVP 33\r\na=rtpmap:33 MP2T\/90000\r\na=control:track1\r\n$/);
  const raw = buildSdp({ ...base, multicast: { group: '239.1.2.3', ttl: 4, port: 5004, transport: 'udp' } });
  t.regex(raw, /\r\nm=video 5004 udp MP2T\r\na=control:track1\r\n$/);
  t.throws(() => buildSdp({ ...base, multicast: { group: '10.1.2.3', ttl: 4, port: 5004, transport: 'rtp' } }), { message: /multicast group/ });
  t.throws(() => buildSdp({ ...base, multicast: { group: '239.1.2.3', ttl: 256, port: 5004, transport: 'rtp' } }), { message: /ttl/ });
});
