import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { http } from '../support/test-app';

const VICTIM = 'victim.logging@example.com';

/**
 * A failing INSERT must not put the statement's parameters (a bcrypt hash, the email) or the
 * failing row into the log: the built server, on PostgreSQL, at debug level, as operators run it.
 */
describe('database errors in the log (built server, PostgreSQL)', () => {
  let database: TestDatabase;
  let dataDir: string;
  let server: ServerProcess;

  beforeAll(async () => {
    if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
    database = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-log-'));
    server = await spawnServer({ DATA_DIR: dataDir, DATABASE_URL: database.url, LOG_LEVEL: 'debug', BCRYPT_COST: '4' });
    await waitForHttp(`${server.baseUrl}/api/v1/ready`, 60_000);
    // A constraint the application does not know about: the INSERT of this one account fails
    // inside the database, the way an unexpected database error does.
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`ALTER TABLE users ADD CONSTRAINT smcp_test_reject CHECK (email <> '${VICTIM}')`);
    } finally {
      await client.end();
    }
  });
  afterAll(async () => {
    server?.child.kill('SIGKILL');
    await server?.exited;
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 500 with the Error body and logs the failure by code and constraint, without parameters or row', async () => {
    const res = await http(server.baseUrl, 'POST', '/api/v1/auth/register', {
      body: { email: VICTIM, password: 'Vq7$kLm2pXz9Ab', name: 'Victim' },
    });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({
      error: 'INTERNAL_ERROR',
      message: 'Internal server error',
      details: [],
      timestamp: expect.any(String),
      requestId: expect.any(String),
      traceId: expect.any(String),
    });

    const lines = await logLinesUntil(server, (line) => line.requestId === res.body.requestId && line.msg === 'Unhandled error');
    const everything = server.stdout() + server.stderr();
    expect(everything).not.toContain('$2b$');
    expect(everything).not.toContain(VICTIM);
    expect(everything).not.toContain('Failing row');
    expect(everything).not.toContain('INSERT INTO users');
    const logged = lines.find((line) => line.requestId === res.body.requestId && line.msg === 'Unhandled error');
    expect(logged?.err).toMatchObject({ type: 'QueryFailedError', sqlState: '23514', table: 'users', constraint: 'smcp_test_reject' });
  });
});

/** The server's JSON log lines, once one matches (the log is written asynchronously). */
async function logLinesUntil(server: ServerProcess, match: (line: Record<string, any>) => boolean): Promise<Array<Record<string, any>>> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const lines = server
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, any>);
    if (lines.some(match)) return lines;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no matching log line; log was:\n${server.stdout()}`);
}
