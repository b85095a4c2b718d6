import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_MAIN, spawnServer, waitForHttp } from './support/server-process';

/** The built server as a process: what `npm start` runs. `npm test` builds first. */
describe('server process', () => {
  let dataDir: string;
  beforeAll(() => {
    if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-proc-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses to boot on a bad value and names the variable', async () => {
    const server = await spawnServer({ DATA_DIR: dataDir, PORT: 'eighty', LOG_LEVEL: 'loud' });
    expect(await server.exited).toBe(78);
    expect(server.stderr()).toContain('PORT must be an integer');
    expect(server.stderr()).toContain('LOG_LEVEL must be one of');
  });

  it('refuses to boot in production without secrets instead of inventing them', async () => {
    const server = await spawnServer({ DATA_DIR: dataDir, NODE_ENV: 'production' });
    expect(await server.exited).toBe(78);
    expect(server.stderr()).toContain('JWT_SECRET is required when NODE_ENV=production');
    expect(server.stderr()).toContain('ENCRYPTION_KEY is required when NODE_ENV=production');
  });

  it('serves on the embedded default, logs one redacted line per request, refuses a second process on the same data, and stops on SIGTERM', async () => {
    const server = await spawnServer({ DATA_DIR: dataDir, LOG_LEVEL: 'info' });
    try {
      await waitForHttp(`${server.baseUrl}/api/v1/ready`, 60_000);
      await fetch(`${server.baseUrl}/api/v1/health`);
      const res = await fetch(`${server.baseUrl}/api/v1/nothing-here?ticket=tkt_secret_value`, {
        headers: { 'x-request-id': 'proc-test-1', authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.secret.sig' },
      });
      expect(res.status).toBe(404);

      const rival = await spawnServer({ DATA_DIR: dataDir });
      expect(await rival.exited).toBe(1);
      expect(rival.stderr()).toContain('is in use by process');

      await new Promise((resolve) => setTimeout(resolve, 200));
      const lines = server
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line));
      const requestLine = lines.find((l) => l.msg === 'request completed' && l.reqId === 'proc-test-1');
      expect(requestLine).toMatchObject({ method: 'GET', statusCode: 404, path: '/api/v1/nothing-here' });
      expect(requestLine.durationMs).toEqual(expect.any(Number));
      // A fresh DATA_DIR starts from the data directory the build prepared, not from initdb.
      expect(lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Embedded PostgreSQL')).map((l) => l.msg)).toEqual([
        expect.stringContaining('(new, from the template)'),
      ]);
      expect(lines.some((l) => l.msg === 'request completed' && l.route === '/api/v1/health')).toBe(false);
      expect(server.stdout()).not.toContain('eyJhbGciOiJIUzI1NiJ9');
      expect(server.stdout()).not.toContain('tkt_secret_value');

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('comes back after kill -9 on the embedded default: the stale pglite.pid is ignored and the data is kept', async () => {
    const killedDir = mkdtempSync(join(tmpdir(), 'smcp-proc-kill-'));
    const env = { DATA_DIR: killedDir, LOG_LEVEL: 'info', ADMIN_EMAIL: 'kill.admin@example.com', ADMIN_PASSWORD: 'Kill$Nine9Restart' };
    try {
      const first = await spawnServer(env);
      await waitForHttp(`${first.baseUrl}/api/v1/ready`, 60_000);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      expect(existsSync(join(killedDir, 'pglite.pid'))).toBe(true);

      const again = await spawnServer(env);
      try {
        await waitForHttp(`${again.baseUrl}/api/v1/ready`, 60_000);
        const login = await fetch(`${again.baseUrl}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }),
        });
        expect(login.status).toBe(200);
        const started = again
          .stdout()
          .split('\n')
          .filter((line) => line.includes('Embedded PostgreSQL'))
          .map((line) => JSON.parse(line).msg);
        expect(started).toEqual([expect.stringContaining('(existing data)')]);
      } finally {
        again.child.kill('SIGKILL');
      }
    } finally {
      rmSync(killedDir, { recursive: true, force: true });
    }
  }, 150_000);
});
