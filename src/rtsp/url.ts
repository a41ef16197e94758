// RTSP Request-URIs (RFC 2326 §3.2, RFC 3986 syntax): split an absolute rtsp://
// URL into host, port, path and query, and split the path into the asset and the
// track control suffix that our SDP's a=control names.
//
// The path stays percent-encoded: decoding and path-safety checks belong to the
// catalog, and doing them twice invites the two to disagree (e.g. on "%2F").

import { TwinframeError } from '../errors.js';

/** The a=control value of the one media section of our SDP; a SETUP names it after the asset path. */
export const TRACK_CONTROL = 'track1';

// Only our own control names are split off: "/movies/track1" is read as track 1
// of "/movies", so an asset literally named track<N> needs the full `path`.
const TRACK_SEGMENT = /^track[0-9]{1,3}$/;

export type RtspUrl =
  /** "*": the server as a whole (OPTIONS). */
  | { readonly kind: 'star' }
  | {
      readonly kind: 'absolute';
      /** Lower-cased scheme: 'rtsp' or 'rtsps'. */
      readonly scheme: string;
      /** Host as written, IPv6 literals without brackets. */
      readonly host: string;
      readonly port: number | undefined;
      /** The full path, percent-encoded, always starting with '/'. */
      readonly path: string;
      /** The path without a trailing '/' and without the track suffix. */
      readonly assetPath: string;
      /** The track control suffix ('track1'), when the last segment is one. */
      readonly track: string | undefined;
      /** The query without its '?', still percent-encoded. */
      readonly query: string | undefined;
    };

// RFC 3986: unreserved / pct-encoded / sub-delims / ":" / "@", and "/" between segments.
const PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;
const QUERY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const USERINFO = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;

function bad(message: string, uri: string): never {
  throw new TwinframeError('TF_RTSP_BAD_REQUEST', `request URI: ${message}`, { uri });
}

export function parseRtspUrl(uri: string): RtspUrl {
  if (uri === '*') return { kind: 'star' };
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$/.exec(uri);
  if (!m) bad('not an absolute rtsp:// URL or *', uri);
  const scheme = m[1].toLowerCase();
  if (scheme !== 'rtsp' && scheme !== 'rtsps') bad(`scheme ${scheme} is not rtsp`, uri);
  if (m[5] !== undefined) bad('fragment in a request URI', uri);

  let authority = m[2];
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    // Credentials in the URL are accepted and dropped: they must never reach a log.
    if (!USERINFO.test(authority.slice(0, at))) bad('malformed userinfo', uri);
    authority = authority.slice(at + 1);
  }
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) bad('unterminated IPv6 literal', uri);
    host = authority.slice(1, close);
    if (!IPV6.test(host) || !host.includes(':')) bad('malformed IPv6 literal', uri);
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) bad('malformed authority', uri);
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const colon = authority.indexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (!REG_NAME.test(host)) bad('malformed host', uri);
  }
  let port: number | undefined;
  // RFC 3986 allows an empty port ("host:"), meaning the default.
  if (portText !== undefined && portText !== '') {
    if (!/^[0-9]{1,5}$/.test(portText)) bad('malformed port', uri);
    port = Number(portText);
    if (port < 1 || port > 65535) bad('port out of range', uri);
  }

  const path = m[3] === '' ? '/' : m[3];
  if (!path.startsWith('/') || !PATH.test(path)) bad('malformed path', uri);
  const query = m[4];
  if (query !== undefined && !QUERY.test(query)) bad('malformed query', uri);

  // A trailing '/' comes from players that resolve control URLs against a
  // Content-Base ending in '/' (ffmpeg sends PLAY to the base itself).
  let assetPath = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  let track: string | undefined;
  const slash = assetPath.lastIndexOf('/');
  const last = assetPath.slice(slash + 1);
  if (slash > 0 && TRACK_SEGMENT.test(last)) {
    track = last;
    assetPath = assetPath.slice(0, slash);
  }
  return { kind: 'absolute', scheme, host, port, path, assetPath, track, query };
}
