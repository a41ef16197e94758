// The Transport header (RFC 2326 §12.39, plus the cable-VOD MP2T/H2221/UDP and
// RAW/RAW/UDP specs): parse the client's list of acceptable transports, choose
// the first one this server can stream, serialize the spec for the reply.
//
// Parsing is generic (any protocol/profile[/lower] with the RFC's parameters) so
// that an unknown spec in the client's list does not fail the whole header:
// RFC 2326 lets the client offer alternatives in order of preference, and the
// server must skip those it cannot use rather than reject them.

import { TwinframeError } from '../../errors.js';

export interface PortRange {
  readonly first: number;
  /** The second port of "a-b"; absent for a single port. */
  readonly last?: number;
}

export type Delivery = 'unicast' | 'multicast';

export interface TransportSpec {
  /** Upper-cased: 'RTP', 'MP2T', 'RAW', … */
  readonly protocol: string;
  /** Upper-cased: 'AVP', 'H2221', 'RAW', … */
  readonly profile: string;
  /** Upper-cased 'UDP', 'TCP', …; absent when the spec has only two parts (RTP/AVP means UDP). */
  readonly lowerTransport?: string;
  readonly delivery?: Delivery;
  readonly destination?: string;
  readonly source?: string;
  readonly interleaved?: PortRange;
  readonly append?: boolean;
  readonly ttl?: number;
  readonly layers?: number;
  readonly port?: PortRange;
  readonly clientPort?: PortRange;
  readonly serverPort?: PortRange;
  /** RTP SSRC, 32 bits. */
  readonly ssrc?: number;
  /** Upper-cased method names, e.g. ['PLAY']. */
  readonly mode?: readonly string[];
  /** Parameters this module does not interpret, kept in order so they survive a round trip. */
  readonly extra?: readonly (readonly [name: string, value: string | undefined])[];
}

/** The transport the server will stream with: datagrams to the client's ports... */
export interface UdpTransport {
  /** 'rtp': RTP/AVP over UDP, payload type 33. 'udp': bare MPEG-TS datagrams. */
  readonly kind: 'rtp' | 'udp';
  readonly lower: 'udp';
  readonly clientRtpPort: number;
  /** Only for 'rtp', and only when the client named a port pair. */
  readonly clientRtcpPort?: number;
  /**
   * Where the client asked the media to go. The caller must check it against the
   * connection's peer address before using it (RFC 2326 §12.39 warns that an
   * unchecked destination turns the server into a traffic cannon); answer a
   * foreign destination with TF_RTSP_FORBIDDEN.
   */
  readonly destination?: string;
  /** The spec this choice came from, to build the reply's Transport header. */
  readonly spec: TransportSpec;
}

/** ...or RTP frames on the RTSP connection itself (RFC 2326 §10.12), on two channels. */
export interface InterleavedTransport {
  readonly kind: 'rtp';
  readonly lower: 'tcp';
  /** RTP on `rtp`, RTCP on `rtcp`: the client's interleaved=a-b, or 0-1 when it named none. */
  readonly channels: { readonly rtp: number; readonly rtcp: number };
  readonly spec: TransportSpec;
}

export type ChosenTransport = UdpTransport | InterleavedTransport;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PORT = /^[0-9]{1,5}$/;

function bad(message: string, value: string): never {
  throw new TwinframeError('TF_RTSP_BAD_REQUEST', `Transport: ${message}`, { header: 'Transport', value });
}

/**
 * Split on `sep` outside double quotes: mode="PLAY,RECORD" holds a comma that
 * does not separate transport specs.
 */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      parts.push(s.slice(from, i));
      from = i + 1;
    }
  }
  if (quoted) bad('unterminated quoted string', s);
  parts.push(s.slice(from));
  return parts;
}

function parsePortRange(value: string | undefined, name: string, spec: string): PortRange {
  if (value === undefined) bad(`${name} needs a value`, spec);
  const [a, b, ...rest] = value.split('-');
  if (rest.length > 0 || a === undefined || !PORT.test(a) || (b !== undefined && !PORT.test(b))) {
    bad(`malformed ${name}`, spec);
  }
  const first = Number(a);
  const last = b === undefined ? undefined : Number(b);
  if (first > 65535 || (last !== undefined && last > 65535)) bad(`${name} out of range`, spec);
  return last === undefined ? { first } : { first, last };
}

function parseInteger(value: string | undefined, name: string, spec: string, maxDigits: number): number {
  if (value === undefined || !new RegExp(`^[0-9]{1,${maxDigits}}$`).test(value)) bad(`malformed ${name}`, spec);
  return Number(value);
}

function parseSpec(raw: string): TransportSpec {
  const params = splitOutsideQuotes(raw, ';').map((p) => p.trim());
  const head = params.shift()!;
  const triple = head.split('/');
  if (triple.length < 2 || triple.length > 3 || !triple.every((t) => TOKEN.test(t))) bad('malformed transport protocol', raw);
  const spec: {
    -readonly [K in keyof TransportSpec]: TransportSpec[K];
  } = { protocol: triple[0].toUpperCase(), profile: triple[1].toUpperCase() };
  if (triple[2] !== undefined) spec.lowerTransport = triple[2].toUpperCase();

  const extra: [string, string | undefined][] = [];
  for (const param of params) {
    if (param === '') continue; // tolerate "a;;b" and a trailing ';'
    const eq = param.indexOf('=');
    const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : param.slice(eq + 1).trim();
    if (!TOKEN.test(name)) bad('malformed parameter', raw);
    switch (name) {
      case 'unicast':
      case 'multicast':
        if (value !== undefined) bad(`${name} takes no value`, raw);
        if (spec.delivery !== undefined && spec.delivery !== name) bad('both unicast and multicast', raw);
        spec.delivery = name;
        break;
      case 'destination':
        // RFC 2326 lets "destination" stand alone; it then means the client itself.
        if (value !== undefined) {
          if (value === '' || /[\s"]/.test(value)) bad('malformed destination', raw);
          spec.destination = value;
        }
        break;
      case 'source':
        if (value === undefined || value === '' || /[\s"]/.test(value)) bad('malformed source', raw);
        spec.source = value;
        break;
      case 'interleaved':
        spec.interleaved = parsePortRange(value, name, raw);
        if (spec.interleaved.first > 255 || (spec.interleaved.last ?? 0) > 255) bad('interleaved channel out of range', raw);
        break;
      case 'append':
        spec.append = true;
        break;
      case 'ttl':
        spec.ttl = parseInteger(value, name, raw, 3);
        if (spec.ttl > 255) bad('ttl out of range', raw);
        break;
      case 'layers':
        spec.layers = parseInteger(value, name, raw, 9);
        break;
      case 'port':
        spec.port = parsePortRange(value, name, raw);
        break;
      case 'client_port':
        spec.clientPort = parsePortRange(value, name, raw);
        break;
      case 'server_port':
        spec.serverPort = parsePortRange(value, name, raw);
        break;
      case 'ssrc':
        // RFC 2326 says 8 hex digits; some clients drop leading zeros.
        if (value === undefined || !/^[0-9A-Fa-f]{1,8}$/.test(value)) bad('malformed ssrc', raw);
        spec.ssrc = Number.parseInt(value, 16);
        break;
      case 'mode': {
        if (value === undefined) bad('mode needs a value', raw);
        const unquoted = value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
        const modes = unquoted.split(',').map((m) => m.trim().toUpperCase());
        if (!modes.every((m) => TOKEN.test(m))) bad('malformed mode', raw);
        spec.mode = modes;
        break;
      }
      default:
        extra.push([name, value]);
    }
  }
  if (extra.length > 0) spec.extra = extra;
  return spec;
}

/** Parse a Transport header value into the client's specs, in preference order. Malformed → TF_RTSP_BAD_REQUEST. */
export function parseTransport(value: string): TransportSpec[] {
  const specs = splitOutsideQuotes(value, ',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length === 0) bad('empty header', value);
  return specs.map(parseSpec);
}

function portRangeText(r: PortRange): string {
  return r.last === undefined ? `${r.first}` : `${r.first}-${r.last}`;
}

/** One spec as it goes on the wire; parameters in a fixed order. */
export function serializeTransportSpec(spec: TransportSpec): string {
  const parts = [[spec.protocol, spec.profile, spec.lowerTransport].filter((p) => p !== undefined).join('/')];
  if (spec.delivery) parts.push(spec.delivery);
  if (spec.destination !== undefined) parts.push(`destination=${spec.destination}`);
  if (spec.source !== undefined) parts.push(`source=${spec.source}`);
  if (spec.interleaved) parts.push(`interleaved=${portRangeText(spec.interleaved)}`);
  if (spec.append) parts.push('append');
  if (spec.ttl !== undefined) parts.push(`ttl=${spec.ttl}`);
  if (spec.layers !== undefined) parts.push(`layers=${spec.layers}`);
  if (spec.port) parts.push(`port=${portRangeText(spec.port)}`);
  if (spec.clientPort) parts.push(`client_port=${portRangeText(spec.clientPort)}`);
  if (spec.serverPort) parts.push(`server_port=${portRangeText(spec.serverPort)}`);
  if (spec.ssrc !== undefined) parts.push(`ssrc=${(spec.ssrc >>> 0).toString(16).toUpperCase().padStart(8, '0')}`);
  if (spec.mode) parts.push(spec.mode.length === 1 ? `mode=${spec.mode[0]}` : `mode="${spec.mode.join(',')}"`);
  for (const [name, value] of spec.extra ?? []) parts.push(value === undefined ? name : `${name}=${value}`);
  const text = parts.join(';');
  if (/[\r\n]/.test(text)) throw new TypeError('Transport value contains a line break');
  return text;
}

export function serializeTransport(specs: readonly TransportSpec[]): string {
  return specs.map(serializeTransportSpec).join(',');
}

function validPort(p: number | undefined): p is number {
  return p !== undefined && p >= 1 && p <= 65535;
}

/**
 * Why `spec` cannot be streamed, or how. Missing delivery counts as unicast:
 * RFC 2326 makes multicast the default, but every player that omits the
 * parameter (and every server we know of, gortsplib and live555 included) means
 * unicast.
 */
function classify(spec: TransportSpec): { kind: 'rtp' | 'udp'; lower: 'udp' | 'tcp' } | { reason: string } {
  const name = [spec.protocol, spec.profile, spec.lowerTransport ?? ''].join('/');
  let kind: 'rtp' | 'udp';
  let lower: 'udp' | 'tcp' = 'udp';
  if (name === 'RTP/AVP/' || name === 'RTP/AVP/UDP') kind = 'rtp';
  else if (name === 'MP2T/H2221/UDP' || name === 'RAW/RAW/UDP') kind = 'udp';
  else if (name === 'RTP/AVP/TCP') {
    kind = 'rtp';
    lower = 'tcp';
  } else return { reason: `${name.replace(/\/$/, '')} is not supported` };
  if (spec.delivery === 'multicast') return { reason: 'multicast is not supported' };
  if (spec.mode && !spec.mode.includes('PLAY')) return { reason: `mode ${spec.mode.join(',')} is not supported` };
  if (lower === 'tcp') {
    const channels = spec.interleaved;
    if (channels?.last !== undefined && channels.last !== channels.first + 1) return { reason: 'interleaved channels must be two consecutive numbers' };
    if (channels !== undefined && channels.first > 254) return { reason: 'interleaved channel out of 0..254' };
    return { kind, lower };
  }
  if (!spec.clientPort) return { reason: 'no client_port' };
  if (!validPort(spec.clientPort.first)) return { reason: 'client_port out of 1..65535' };
  if (spec.clientPort.last !== undefined && !validPort(spec.clientPort.last)) return { reason: 'client_port out of 1..65535' };
  return { kind, lower };
}

/**
 * The first spec in the client's list this server can stream, or
 * TF_RTSP_UNSUPPORTED_TRANSPORT (461) with the reason each spec was refused.
 * `interleavedRefusal`: why RTP on the connection cannot be offered here (no
 * native addon), or undefined when it can.
 */
export function chooseTransport(specs: readonly TransportSpec[], interleavedRefusal?: string): ChosenTransport {
  const reasons: string[] = [];
  for (const spec of specs) {
    const verdict = classify(spec);
    if ('reason' in verdict) {
      reasons.push(verdict.reason);
      continue;
    }
    if (verdict.lower === 'tcp') {
      if (interleavedRefusal !== undefined) {
        reasons.push(interleavedRefusal);
        continue;
      }
      const first = spec.interleaved?.first ?? 0;
      return { kind: 'rtp', lower: 'tcp', channels: { rtp: first, rtcp: first + 1 }, spec };
    }
    const clientPort = spec.clientPort!;
    return {
      kind: verdict.kind,
      lower: 'udp',
      clientRtpPort: clientPort.first,
      ...(verdict.kind === 'rtp' && clientPort.last !== undefined ? { clientRtcpPort: clientPort.last } : {}),
      ...(spec.destination !== undefined ? { destination: spec.destination } : {}),
      spec,
    };
  }
  throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `no supported transport: ${reasons.join('; ')}`, { reasons });
}

export interface ServerTransportParams {
  /** The local port media leaves from (RTP port for 'rtp'). */
  readonly serverRtpPort: number;
  /** RTCP port; for 'rtp' conventionally serverRtpPort + 1. */
  readonly serverRtcpPort?: number;
  readonly ssrc?: number;
  /** The server's stream address, when the client should know it. */
  readonly source?: string;
}

/**
 * The spec for the SETUP reply: the client's chosen spec as it asked for it
 * (protocol spelling, ports, destination), plus the server's ports and SSRC.
 * Players such as ffmpeg read server_port to know where RTP comes from.
 */
export function transportReply(chosen: ChosenTransport, server: ServerTransportParams): TransportSpec {
  const s = chosen.spec;
  const common = {
    protocol: s.protocol,
    profile: s.profile,
    ...(s.lowerTransport !== undefined ? { lowerTransport: s.lowerTransport } : {}),
    delivery: 'unicast' as const,
  };
  const tail = {
    ...(chosen.kind === 'rtp' && server.ssrc !== undefined ? { ssrc: server.ssrc } : {}),
    ...(s.mode !== undefined ? { mode: ['PLAY'] } : {}),
  };
  if (chosen.lower === 'tcp') return { ...common, interleaved: { first: chosen.channels.rtp, last: chosen.channels.rtcp }, ...tail };
  const serverPort: PortRange =
    chosen.kind === 'rtp' && server.serverRtcpPort !== undefined
      ? { first: server.serverRtpPort, last: server.serverRtcpPort }
      : { first: server.serverRtpPort };
  const clientPort: PortRange =
    chosen.clientRtcpPort !== undefined
      ? { first: chosen.clientRtpPort, last: chosen.clientRtcpPort }
      : { first: chosen.clientRtpPort };
  return {
    ...common,
    ...(chosen.destination !== undefined ? { destination: chosen.destination } : {}),
    ...(server.source !== undefined ? { source: server.source } : {}),
    clientPort,
    serverPort,
    ...tail,
  };
}

/** Where a multicast broadcast goes: viewers join it, nothing is sent for them alone. */
export interface MulticastGroup {
  readonly group: string;
  /** The RTP port (even); RTCP's is the next. A 'udp' broadcast uses this one port. */
  readonly port: number;
  readonly ttl: number;
  readonly kind: 'rtp' | 'udp';
}

/**
 * Why a spec cannot join `group`, or undefined when it can: the broadcast's own
 * protocol, and multicast delivery, or none named and no client_port (a client
 * with ports of its own asks for unicast).
 */
function multicastRefusal(spec: TransportSpec, group: MulticastGroup): string | undefined {
  const name = [spec.protocol, spec.profile, spec.lowerTransport ?? ''].join('/').replace(/\/$/, '');
  const protocols = group.kind === 'rtp' ? ['RTP/AVP', 'RTP/AVP/UDP'] : ['MP2T/H2221/UDP', 'RAW/RAW/UDP'];
  const offer = group.kind === 'rtp' ? 'RTP/AVP;multicast' : 'MP2T/H2221/UDP;multicast';
  if (!protocols.includes(name)) return `${name} cannot join this broadcast (it is ${offer})`;
  if (spec.mode && !spec.mode.includes('PLAY')) return `mode ${spec.mode.join(',')} is not supported`;
  if (spec.delivery === 'unicast' || (spec.delivery === undefined && spec.clientPort !== undefined)) {
    return `this broadcast is multicast only: join ${group.group} with ${offer}`;
  }
  return undefined;
}

/**
 * The first spec of a SETUP on a multicast broadcast that joins its group, or
 * TF_RTSP_UNSUPPORTED_TRANSPORT (461) with the reason each spec was refused.
 */
export function chooseMulticastTransport(specs: readonly TransportSpec[], group: MulticastGroup): TransportSpec {
  const reasons: string[] = [];
  for (const spec of specs) {
    const refusal = multicastRefusal(spec, group);
    if (refusal === undefined) return spec;
    reasons.push(refusal);
  }
  throw new TwinframeError('TF_RTSP_UNSUPPORTED_TRANSPORT', `no supported transport: ${reasons.join('; ')}`, { reasons });
}

/**
 * The group's transport for a SETUP reply (RFC 2326 §12.39: destination, port
 * pair, ttl), in the client's spelling of the protocol when it named one that
 * joins, else the broadcast's own.
 */
export function multicastTransportReply(group: MulticastGroup, chosen?: TransportSpec): TransportSpec {
  const head = chosen !== undefined ? { protocol: chosen.protocol, profile: chosen.profile, ...(chosen.lowerTransport !== undefined ? { lowerTransport: chosen.lowerTransport } : {}) }
    : group.kind === 'rtp' ? { protocol: 'RTP', profile: 'AVP' } : { protocol: 'MP2T', profile: 'H2221', lowerTransport: 'UDP' };
  return {
    ...head,
    delivery: 'multicast',
    destination: group.group,
    ttl: group.ttl,
    port: group.kind === 'rtp' ? { first: group.port, last: group.port + 1 } : { first: group.port },
    ...(chosen?.mode !== undefined ? { mode: ['PLAY'] } : {}),
  };
}
