/**
 * Reads a secret from standard input: the first line when piped, or typed at a terminal with
 * the echo off. Secrets never come from argv (visible to every user through `ps`).
 */
export async function readSecret(prompt: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WritableStream): Promise<string> {
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += chunk.toString('utf8');
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0];
  }
  stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let secret = '';
      const onData = (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            stdin.off('data', onData);
            stderr.write('\n');
            return resolve(secret);
          }
          if (char === '\u0003') {
            stdin.off('data', onData);
            stderr.write('\n');
            return reject(new Error('Cancelled'));
          }
          if (char === '\u007f' || char === '\b') secret = secret.slice(0, -1);
          else secret += char;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}
