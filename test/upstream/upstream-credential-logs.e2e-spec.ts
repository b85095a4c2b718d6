import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicaSet } from '../replicas/replica-kit';
import type { ServerProcess } from '../support/server-process';
import { http } from '../support/test-app';
import { signUp } from '../tools/tools-test-kit';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';
import { startWhoami, whoamiEntry } from './whoami-kit';

const LISTING_TOKEN = 'gateway-listing-token-logs-77';
const ACCEPTED = 'dora-pat-logs-3b9f0c';
const REFUSED = 'eli-pat-logs-refused-51aa';

/**
 * Issue 17: the built server's own output (every log line, at debug level) holds no plaintext
 * upstream credential, whatever happens to it: stored, used on a tool call, a prompt and a
 * resource read, refused by the upstream, deleted. Read from the process's stdout and stderr.
 */
describe('Per-user upstream credentials: nothing secret in the logs', () => {
  const replicas = new ReplicaSet();
  let upstream: ReferenceUpstream;
  let server: ServerProcess;

  beforeAll(async () => {
    upstream = await startWhoami([LISTING_TOKEN, ACCEPTED]);
    const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-cred-logs-')), [
      whoamiEntry('UPSTREAM_WHOLOG_LISTING')('wholog', upstream.url, { auth: 'user-secret' }),
    ]);
    const { env } = await replicas.deployment({ MCP_UPSTREAMS_FILE: file, UPSTREAM_WHOLOG_LISTING: LISTING_TOKEN, LOG_LEVEL: 'debug' });
    server = await replicas.start(env);
  });

  afterAll(async () => {
    await replicas.stopAll();
    upstream?.child.kill('SIGTERM');
  });

  it('logs no stored, used or refused secret, nor the gateway listing credential', async () => {
    const [dora, eli] = [await signUp(server, 'dora.logs@example.com'), await signUp(server, 'eli.logs@example.com')];
    for (const [caller, secret] of [
      [dora, ACCEPTED],
      [eli, REFUSED],
    ] as const) {
      const put = await http(server.baseUrl, 'PUT', '/api/v1/upstream-connections/wholog', { token: caller.token, body: { secret } });
      expect(put.status).toBe(200);
    }
    const call = (token: string) =>
      http(server.baseUrl, 'POST', '/api/v1/tools/wholog.whoami/execute', { token, body: { parameters: {} } });
    const done = await waitFor('the wholog tool', async () => {
      const res = await call(dora.token);
      return res.body?.status === 'completed' ? res : undefined;
    });
    expect(done.body.result.structuredContent.token).toBe(ACCEPTED);
    expect((await call(eli.token)).body.error.code).toBe('UPSTREAM_CREDENTIAL_REJECTED');
    const rendered = await http(server.baseUrl, 'POST', '/api/v1/prompts/wholog.whoami/render', { token: dora.token, body: {} });
    expect(rendered.status).toBe(200);
    const read = await http(
      server.baseUrl,
      'GET',
      `/api/v1/resources/read?uri=${encodeURIComponent('mcp-upstream://wholog/whoami://me')}`,
      {
        token: eli.token,
      },
    );
    expect(read.status).toBe(403);
    expect((await http(server.baseUrl, 'DELETE', '/api/v1/upstream-connections/wholog', { token: dora.token })).status).toBe(200);
    // pino flushes its buffer periodically: wait until the last request's line is out.
    const output = await waitFor('the server to have logged the requests', async () => {
      const text = `${server.stdout()}\n${server.stderr()}`;
      return text.includes('upstream-connections/wholog') && text.split('\n').length > 50 ? text : undefined;
    });
    const lines = output.split('\n');
    expect(lines.filter((line) => line.includes(ACCEPTED) || line.includes(REFUSED) || line.includes(LISTING_TOKEN))).toEqual([]);
  });
});
