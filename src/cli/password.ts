// Reading a password for `twinframectl user add`: typed at a prompt that does
// not echo it (asked twice), or the first line of stdin when stdin is not a
// terminal (scripts: `printf '%s\n' "$PW" | twinframectl user add alice`).
// Never from the command line, where `ps` and the shell history would show it.

/** Longest password accepted: a bound on what is hashed. */
const MAX_PASSWORD_LENGTH = 1024;

function hiddenPrompt(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new Error('interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function firstLineOfStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    const nl = text.indexOf('\n');
    if (nl >= 0) {
      process.stdin.destroy();
      return text.slice(0, nl).replace(/\r$/, '');
    }
    if (text.length > MAX_PASSWORD_LENGTH) break;
  }
  return text.replace(/\r$/, '');
}

/** The password, checked: not empty, not too long; at a terminal typed twice alike. */
export async function readPassword(user: string): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await hiddenPrompt(`Password for ${user}: `);
    if ((await hiddenPrompt('Again: ')) !== password) throw new Error('the two passwords differ');
  } else {
    password = await firstLineOfStdin();
  }
  if (password === '') throw new Error('empty password');
  if (password.length > MAX_PASSWORD_LENGTH) throw new Error(`password longer than ${MAX_PASSWORD_LENGTH} characters`);
  return password;
}
