// Entry of the receiver as a child process (the default): its init and commands
// come over the IPC channel, its reports go back the same way.

import { runReceiver, type Channel } from './receiver.js';
import type { ToReceiver } from './model.js';

let pendingSends = 0;
let closing = false;
/** Disconnect only once every report has left, so that the last one (the data) is not cut off. */
const disconnectWhenFlushed = (): void => {
  if (closing && pendingSends === 0 && process.connected) process.disconnect();
};
const channel: Channel = {
  post: (msg) => {
    if (!process.connected || process.send === undefined) return;
    pendingSends++;
    process.send(msg, undefined, {}, () => { pendingSends--; disconnectWhenFlushed(); });
  },
  onMessage: (handler) => process.on('message', (m: ToReceiver) => handler(m)),
  close: () => { closing = true; disconnectWhenFlushed(); },
};
process.on('disconnect', () => process.exit(0)); // the bench went away: so do we
process.once('message', (m: ToReceiver) => {
  if (m.type === 'init') runReceiver(m.init, channel);
});
