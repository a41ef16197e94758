// A test client's Digest login: send the request; on a 401, answer the MD5
// challenge (RFC 2069 form, as live555 and GStreamer do) and send it again.

import { digestHa1, digestResponse } from '../../src/rtsp/auth.js';
import type { RtspClient, RequestOptions } from './rtsp-client.js';
import type { RtspResponse } from './rtsp-message.js';

export interface Login {
  readonly user: string;
  readonly password: string;
  readonly realm?: string;
}

export async function requestWithLogin(client: RtspClient, method: string, target: string, login: Login, options: RequestOptions = {}): Promise<RtspResponse> {
  const first = await client.request(method, target, options);
  if (first.status !== 401) return first;
  const challenge = first.headers.getAll('www-authenticate').find((c) => c.includes('algorithm=MD5')) ?? '';
  const nonce = /nonce="([^"]+)"/.exec(challenge)?.[1] ?? '';
  const realm = login.realm ?? 'twinframe';
  const uri = client.url(target);
  const response = digestResponse({ algorithm: 'MD5', ha1: digestHa1('MD5', login.user, realm, login.password), nonce, method, uri });
  const headers = { ...(options.headers as Record<string, string> | undefined), Authorization: `Digest username="${login.user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}"` };
  return client.request(method, target, { ...options, headers });
}
