import { DataSource } from 'typeorm';
import { MigrationService } from '@app/database';
import { waitFor } from './support/polling';
import { createTestDatabase } from './support/test-database';
import { DATABASE_KINDS, http, startTestApp, TestApp } from './support/test-app';
import { TcpProxy } from './support/tcp-proxy';

describe.each(DATABASE_KINDS)('database (%s)', (kind) => {
  it('keeps written data and applied migrations across a restart', async () => {
    const first = await startTestApp(kind);
    let second: TestApp | undefined;
    try {
      const ds = first.app.get(DataSource);
      const [{ installation_id: installationId }] = await ds.query(`SELECT installation_id FROM installation`);
      await ds.query(`UPDATE installation SET schema_note = $1`, ['written before restart']);
      const [{ count: applied }] = await ds.query(`SELECT count(*)::int AS count FROM migrations`);
      await first.stop();

      second = await startTestApp(kind, { reuse: first });
      const ds2 = second.app.get(DataSource);
      const rows = await ds2.query(`SELECT installation_id, schema_note FROM installation`);
      expect(rows).toEqual([{ installation_id: installationId, schema_note: 'written before restart' }]);
      const [{ count: appliedAfter }] = await ds2.query(`SELECT count(*)::int AS count FROM migrations`);
      expect(appliedAfter).toBe(applied);
      expect((await http(second.baseUrl, 'GET', '/api/v1/ready')).status).toBe(200);
    } finally {
      await (second ?? first).close();
    }
  });

  describe('concurrency', () => {
    let t: TestApp;
    let ds: DataSource;
    beforeAll(async () => {
      t = await startTestApp(kind);
      ds = t.app.get(DataSource);
      await ds.query(`CREATE TABLE probe_counter (id int PRIMARY KEY, value int NOT NULL)`);
      await ds.query(`CREATE TABLE probe_rows (id serial PRIMARY KEY, tag text NOT NULL)`);
      await ds.query(`INSERT INTO probe_counter VALUES (1, 0)`);
    });
    afterAll(() => t?.close());

    it('keeps concurrent transactions whole and isolated (commits counted, rollbacks leave nothing)', async () => {
      const work = Array.from({ length: 40 }, (_, i) =>
        ds
          .transaction(async (manager) => {
            const [{ value }] = await manager.query(`SELECT value FROM probe_counter WHERE id = 1 FOR UPDATE`);
            await manager.query(`INSERT INTO probe_rows (tag) VALUES ($1)`, [`tx-${i}`]);
            await new Promise((resolve) => setImmediate(resolve));
            await manager.query(`UPDATE probe_counter SET value = $1 WHERE id = 1`, [value + 1]);
            if (i % 4 === 0) throw new Error('roll me back');
          })
          .then(
            () => 'committed',
            () => 'rolled back',
          ),
      );
      const outcomes = await Promise.all(work);
      const committed = outcomes.filter((o) => o === 'committed').length;
      expect(committed).toBe(30);
      const [{ value }] = await ds.query(`SELECT value FROM probe_counter WHERE id = 1`);
      expect(value).toBe(committed);
      const tags: Array<{ tag: string }> = await ds.query(`SELECT tag FROM probe_rows ORDER BY id`);
      expect(tags).toHaveLength(committed);
      expect(tags.some((r) => r.tag === 'tx-0' || r.tag === 'tx-4')).toBe(false);
    });

    it('answers many parallel parameterised queries each with its own result', async () => {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => ds.query(`SELECT $1::int * 2 AS doubled, $2::text AS tag`, [i, `q${i}`])),
      );
      results.forEach((rows, i) => expect(rows).toEqual([{ doubled: i * 2, tag: `q${i}` }]));
    });
  });

  it('is not ready while migrations are pending (RUN_MIGRATIONS=false) and ready once they run', async () => {
    const t = await startTestApp(kind, { env: { RUN_MIGRATIONS: 'false' } });
    try {
      expect((await http(t.baseUrl, 'GET', '/api/v1/ready')).body.ready).toBe(false);
      expect((await http(t.baseUrl, 'GET', '/api/v1/ready')).status).toBe(503);
      expect((await http(t.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
      await t.app.get(MigrationService).runPending();
      expect((await http(t.baseUrl, 'GET', '/api/v1/ready')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('database outage (postgres behind a proxy we can cut)', () => {
  let proxy: TcpProxy;
  let t: TestApp;

  beforeAll(async () => {
    const database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const port = await proxy.start();
    target.host = `127.0.0.1:${port}`;
    t = await startTestApp('postgres', {
      env: { DATABASE_URL: target.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1000' },
      reuse: { dataDir: undefined as unknown as string, database },
    });
  });
  afterAll(async () => {
    await proxy.restore().catch(() => undefined);
    await t?.close();
    await proxy.cut();
  });

  it('drops readiness, keeps liveness and recovers by itself', async () => {
    expect((await http(t.baseUrl, 'GET', '/api/v1/ready')).status).toBe(200);

    await proxy.cut();
    // Answered while the database is still away (it comes back only below).
    const ready = await http(t.baseUrl, 'GET', '/api/v1/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ ready: false, timestamp: expect.any(String) });
    expect((await http(t.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
    const detailed = await http(t.baseUrl, 'GET', '/api/v1/health/detailed');
    expect(detailed.body.status).toBe('unhealthy');
    expect(detailed.body.components.database.status).toBe('unhealthy');

    await proxy.restore();
    await waitFor('ready again', async () => (await http(t.baseUrl, 'GET', '/api/v1/ready')).status === 200, 10_000, 100);
    expect((await http(t.baseUrl, 'GET', '/api/v1/health/detailed')).body.components.database.status).toBe('healthy');
  });
});
