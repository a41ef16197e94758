// The private link between the two processes of a process pair: JSON messages,
// one per line, over any byte stream (a Unix socket on one box; a TCP
// connection between hosts would do the same), and the mutual HMAC challenge
// that authenticates it before anything else crosses. The secret never does.

import type { Socket } from 'node:net';
import { TwinframeError } from '../errors.js';
import {
  HANDSHAKE_TIMEOUT_MS, LINK_PROTOCOL, newNonce, proofHolds, proofOf, type LinkMessage,
} from './link-messages.js';

/** A snapshot of many sessions is one line per step; anything longer than this is not ours. */
const MAX_LINE_CHARS = 16 * 1024 * 1024;

export class LinkChannel {
  private pending = '';
  private readonly inbox: LinkMessage[] = [];
  private waiter: ((m: LinkMessage | undefined) => void) | undefined;
  private handler: ((m: LinkMessage) => void) | undefined;
  private closed = false;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => {}); // the 'close' that follows is what matters
    socket.on('close', () => this.markClosed());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queue a message; false when the link is closed. */
  send(message: LinkMessage): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.socket.write(`${JSON.stringify(message)}\n`);
    return true;
  }

  /** Resolves once everything sent is in the kernel's hands (or the link closed, or `timeoutMs` passed). */
  flushed(timeoutMs: number): Promise<void> {
    const socket = this.socket;
    if (this.closed || socket.destroyed || socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      socket.on('close', done);
      socket.write('', done); // called once everything written before it has been handed to the kernel
    });
  }

  /** The next message (handshake), or a rejection when the link closes or the other side is silent. */
  next(timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<LinkMessage> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(new TwinframeError('TF_PAIR_LINK', 'the private link closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TwinframeError('TF_PAIR_LINK', `no answer on the private link within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        this.waiter = undefined;
        if (m) resolve(m);
        else reject(new TwinframeError('TF_PAIR_LINK', 'the private link closed'));
      };
    });
  }

  /** From now on every message goes to `handler`, those already received first. */
  onMessage(handler: (m: LinkMessage) => void): void {
    this.handler = handler;
    for (let m = this.inbox.shift(); m; m = this.inbox.shift()) handler(m);
  }

  /** Runs once when the link closes (at once if it already has). */
  whenClosed(handler: () => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiter?.(undefined);
    for (const h of this.closeHandlers.splice(0)) h();
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.pending += chunk;
    for (let nl = this.pending.indexOf('\n'); nl >= 0; nl = this.pending.indexOf('\n')) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const message = parseMessage(line);
      if (!message) {
        this.close();
        return;
      }
      this.deliver(message);
    }
    if (this.pending.length > MAX_LINE_CHARS) this.close();
  }

  private deliver(message: LinkMessage): void {
    if (this.waiter) this.waiter(message);
    else if (this.handler) this.handler(message);
    else this.inbox.push(message);
  }
}

function parseMessage(line: string): LinkMessage | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string') return value as LinkMessage;
  } catch {
    // not JSON: not our peer
  }
  return undefined;
}

function isPid(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Primary side: challenge the process that connected; resolves with its pid once it proved the secret and we did. */
export async function authenticateStandby(channel: LinkChannel, secret: string): Promise<number> {
  const nonce = newNonce();
  channel.send({ type: 'challenge', protocol: LINK_PROTOCOL, nonce, pid: process.pid });
  const hello = await channel.next();
  const refusal = hello.type !== 'hello' ? `expected hello, got ${hello.type}`
    : hello.protocol !== LINK_PROTOCOL ? `protocol ${hello.protocol}, this primary speaks ${LINK_PROTOCOL}`
      : !proofHolds(secret, 'standby', nonce, hello.proof) ? 'wrong secret'
        : !isPid(hello.pid) ? 'no pid' : undefined;
  if (refusal !== undefined || hello.type !== 'hello') {
    channel.send({ type: 'refused', reason: refusal ?? 'bad hello' });
    throw new TwinframeError('TF_PAIR_AUTH', `standby refused: ${refusal}`);
  }
  channel.send({ type: 'welcome', proof: proofOf(secret, 'primary', hello.nonce) });
  return hello.pid;
}

/** Standby side: answer the primary's challenge and check its proof; resolves with the primary's pid. */
export async function authenticatePrimary(channel: LinkChannel, secret: string): Promise<number> {
  const challenge = await channel.next();
  if (challenge.type === 'refused') throw new TwinframeError('TF_PAIR_AUTH', `the primary refused this standby: ${challenge.reason}`);
  if (challenge.type !== 'challenge' || challenge.protocol !== LINK_PROTOCOL || !isPid(challenge.pid)) {
    throw new TwinframeError('TF_PAIR_AUTH', `not a twinframe primary of protocol ${LINK_PROTOCOL} on the link`);
  }
  const nonce = newNonce();
  channel.send({ type: 'hello', protocol: LINK_PROTOCOL, proof: proofOf(secret, 'standby', challenge.nonce), nonce, pid: process.pid });
  const welcome = await channel.next();
  if (welcome.type === 'refused') throw new TwinframeError('TF_PAIR_AUTH', `the primary refused this standby: ${welcome.reason}`);
  if (welcome.type !== 'welcome' || !proofHolds(secret, 'primary', nonce, welcome.proof)) {
    throw new TwinframeError('TF_PAIR_AUTH', 'the primary did not prove the shared secret');
  }
  return challenge.pid;
}
