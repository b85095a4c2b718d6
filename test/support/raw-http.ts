import { connect } from 'node:net';

/**
 * One request written byte for byte on a fresh socket, read until the server closes it: for what
 * fetch and node:http will not send (CONNECT, malformed request lines).
 */
export function rawHttp(baseUrl: string, head: string): Promise<{ status: number; headers: Headers; text: string; body: unknown }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const response = Buffer.concat(chunks).toString('utf8');
      const [headText, ...rest] = response.split('\r\n\r\n');
      const [statusLine, ...lines] = headText.split('\r\n');
      const headers = new Headers();
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const text = rest.join('\r\n\r\n');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: the caller's assertion says so
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, text, body });
    });
  });
}
