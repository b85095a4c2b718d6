import { DataSource } from 'typeorm';
import { AuditEntry, AuditKeyring, AuditService, GENESIS_HASH, REDACTED } from '@app/audit';
import { Clock } from '@app/core';
import { PassThrough } from 'node:stream';
import { auditVerifyCommand } from '../../apps/server/src/cli/audit-verify.command';
import { appendAsAnotherReplica } from '../support/audit-replica';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { IDENTITY_ENV, IdentityClient, PASSWORD } from '../auth/identity.helpers';

const CONTRACT_FIELDS = [
  'action',
  'details',
  'id',
  'ipAddress',
  'metadata',
  'resource',
  'result',
  'severity',
  'timestamp',
  'userAgent',
  'userId',
];

const entry = (overrides: Partial<AuditEntry> = {}): AuditEntry => ({
  action: 'test.event',
  result: 'success',
  severity: 'info',
  ...overrides,
});

interface StoredRow {
  seq: string;
  id: string;
  action: string;
  details: Record<string, unknown>;
  metadata: Record<string, unknown>;
  prev_hash: string;
  hash: string;
  mac: string | null;
  [column: string]: unknown;
}

describe.each(DATABASE_KINDS)('audit log (%s)', (kind) => {
  let t: TestApp;
  let audit: AuditService;
  let dataSource: DataSource;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: IDENTITY_ENV });
    audit = t.app.get(AuditService);
    dataSource = t.app.get(DataSource);
    await dataSource.query(`CREATE TABLE audit_probe (id text PRIMARY KEY)`);
  });
  afterAll(() => t?.close());

  const rows = (): Promise<StoredRow[]> => dataSource.query(`SELECT * FROM audit_logs ORDER BY seq`);
  const countOf = async (action: string): Promise<number> =>
    Number((await dataSource.query(`SELECT count(*) AS n FROM audit_logs WHERE action = $1`, [action]))[0].n);

  /** Tampering as an attacker with table-owner rights would: the append-only triggers switched off. */
  const tamper = (sql: string, params: unknown[] = []) =>
    dataSource.transaction(async (manager) => {
      await manager.query(`SET LOCAL session_replication_role = replica`);
      await manager.query(sql, params);
    });

  describe('writing', () => {
    it('starts the chain from the genesis hash and chains every row to the one before', async () => {
      await audit.recordStandalone(entry({ action: 'test.first', userId: 'usr_a', resource: 'user:usr_a' }));
      await audit.recordStandalone(entry({ action: 'test.second', result: 'failure', severity: 'warning' }));
      const all = await rows();
      expect(all[0].prev_hash).toBe(GENESIS_HASH);
      all.slice(1).forEach((row, i) => expect(row.prev_hash).toBe(all[i].hash));
      const [first, second] = all.slice(-2);
      expect([first.action, second.action]).toEqual(['test.first', 'test.second']);
      expect(first.id).toMatch(/^aud_/);
      expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(second.prev_hash).toBe(first.hash);
      expect(await audit.verifyChain()).toEqual({
        valid: true,
        checked: all.length,
        firstInvalid: null,
        unkeyedRecords: 0,
        head: { seq: Number(second.seq), id: second.id, hash: second.hash },
      });
    });

    it('commits a record with the transaction it belongs to', async () => {
      await dataSource.transaction(async (manager) => {
        await manager.query(`INSERT INTO audit_probe (id) VALUES ('committed')`);
        await audit.record(manager, entry({ action: 'test.committed' }));
      });
      expect(await countOf('test.committed')).toBe(1);
    });

    it('leaves nothing behind when the transaction rolls back', async () => {
      await expect(
        dataSource.transaction(async (manager) => {
          await audit.record(manager, entry({ action: 'test.rolled_back' }));
          await audit.record(manager, entry({ action: 'test.rolled_back' }));
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      expect(await countOf('test.rolled_back')).toBe(0);
      expect((await audit.verifyChain()).valid).toBe(true);
    });

    it('rolls the change back when its audit record cannot be written', async () => {
      await expect(
        dataSource.transaction(async (manager) => {
          await manager.query(`INSERT INTO audit_probe (id) VALUES ('orphan')`);
          await audit.record(manager, entry({ action: 'test.bad', severity: 'catastrophic' as never }));
        }),
      ).rejects.toThrow(/severity/);
      expect(await dataSource.query(`SELECT id FROM audit_probe WHERE id = 'orphan'`)).toEqual([]);
      expect(await countOf('test.bad')).toBe(0);
    });

    it('opens its own transaction when given a manager outside any', async () => {
      await audit.record(dataSource.manager, entry({ action: 'test.no_transaction' }));
      expect(await countOf('test.no_transaction')).toBe(1);
    });

    it('refuses isolation levels that would read a stale chain head', async () => {
      await expect(
        dataSource.transaction('REPEATABLE READ', (manager) => audit.record(manager, entry({ action: 'test.repeatable' }))),
      ).rejects.toThrow(/READ COMMITTED/);
      expect(await countOf('test.repeatable')).toBe(0);
    });

    it('keeps one unbroken chain under many concurrent writers', async () => {
      const before = (await audit.verifyChain()).checked;
      const writers = Array.from({ length: 40 }, (_, i) =>
        i % 4 === 3
          ? dataSource
              .transaction(async (manager) => {
                await audit.record(manager, entry({ action: 'test.concurrent_rollback', details: { i } }));
                throw new Error('rollback');
              })
              .catch(() => undefined)
          : audit.recordStandalone(entry({ action: 'test.concurrent', details: { i } })),
      );
      await Promise.all(writers);
      expect(await countOf('test.concurrent')).toBe(30);
      expect(await countOf('test.concurrent_rollback')).toBe(0);
      expect(await audit.verifyChain()).toMatchObject({ valid: true, checked: before + 30, firstInvalid: null, unkeyedRecords: 0 });
      const all = await rows();
      expect(new Set(all.map((row) => row.prev_hash)).size).toBe(all.length);
    });

    it('writes a batch as consecutive rows, chained in the order given, committed with its transaction', async () => {
      const before = (await audit.verifyChain()).checked;
      await dataSource.transaction(async (manager) => {
        await manager.query(`INSERT INTO audit_probe (id) VALUES ('batch')`);
        await audit.recordMany(
          manager,
          [0, 1, 2, 3].map((i) => entry({ action: 'test.batch', details: { i } })),
        );
      });
      const batch = (await rows()).slice(-4);
      expect(batch.map((row) => [row.action, row.details.i])).toEqual([0, 1, 2, 3].map((i) => ['test.batch', i]));
      batch.slice(1).forEach((row, i) => expect(row.prev_hash).toBe(batch[i].hash));
      expect(await audit.verifyChain()).toMatchObject({ valid: true, checked: before + 4, firstInvalid: null, unkeyedRecords: 0 });

      await dataSource
        .transaction(async (manager) => {
          await audit.recordMany(manager, [entry({ action: 'test.batch_rollback' }), entry({ action: 'test.batch_rollback' })]);
          throw new Error('rollback');
        })
        .catch(() => undefined);
      expect(await countOf('test.batch_rollback')).toBe(0);
    });

    it('links to rows another replica appended since this one last wrote', async () => {
      await audit.recordStandalone(entry({ action: 'test.before_replica' }));
      await appendAsAnotherReplica(dataSource, t.app.get(AuditKeyring).macKey, 'test.other_replica');
      await audit.recordStandalone(entry({ action: 'test.after_replica' }));
      await audit.recordMany(dataSource.manager, [entry({ action: 'test.after_replica' }), entry({ action: 'test.after_replica' })]);
      const last = (await rows()).slice(-4);
      expect(last.map((row) => row.action)).toEqual([
        'test.other_replica',
        'test.after_replica',
        'test.after_replica',
        'test.after_replica',
      ]);
      last.slice(1).forEach((row, i) => expect(row.prev_hash).toBe(last[i].hash));
      expect((await audit.verifyChain()).valid).toBe(true);
    });

    it('stores the timestamp from the clock, at millisecond precision', async () => {
      const clock = t.app.get(Clock);
      const at = new Date('2030-06-01T10:20:30.456Z');
      const spy = jest.spyOn(clock, 'now').mockReturnValue(at);
      try {
        await audit.recordStandalone(entry({ action: 'test.clock' }));
      } finally {
        spy.mockRestore();
      }
      const [row] = await dataSource.query(`SELECT timestamp FROM audit_logs WHERE action = 'test.clock'`);
      expect((row.timestamp as Date).toISOString()).toBe(at.toISOString());
      expect((await audit.verifyChain()).valid).toBe(true);
    });

    it('round-trips awkward JSON through jsonb without breaking the chain', async () => {
      await audit.recordStandalone(
        entry({
          action: 'test.awkward',
          userAgent: 'Mozilla/5.0 (ünïcödé; 😀)',
          details: {
            zz: 1,
            a: 0.1 + 0.2,
            tiny: 1e-7,
            huge: 1e21,
            neg: -0,
            max: Number.MAX_SAFE_INTEGER,
            text: 'quote " backslash \\ newline \n tab \t emoji 😀 nul \u0000',
            nested: { longer_key: [1, 'two', null, true, { b: 2, a: 1 }], k: {} },
            empty: [],
          },
          metadata: { requestId: 'req_1', when: new Date('2025-01-01T00:00:00.000Z') },
        }),
      );
      expect((await audit.verifyChain()).valid).toBe(true);
    });

    it('never stores secrets', async () => {
      await audit.recordStandalone(
        entry({
          action: 'test.secrets',
          resource: '/api/v1/auth/sso?ticket=ST-12345',
          details: { email: 'a@example.com', password: 'Sup3r$ecretPass', mfaCode: '123456', tokens: { refreshToken: 'rt_abc' } },
          metadata: { authorization: 'Bearer abc.def.ghi', cookie: 'sid=xyz', backupCodes: ['aaaa-bbbb'] },
        }),
      );
      const [row] = await dataSource.query(`SELECT * FROM audit_logs WHERE action = 'test.secrets'`);
      const stored = JSON.stringify(row);
      for (const secret of ['Sup3r$ecretPass', '123456', 'rt_abc', 'abc.def.ghi', 'sid=xyz', 'aaaa-bbbb', 'ST-12345']) {
        expect(stored).not.toContain(secret);
      }
      expect(row.details).toEqual({ email: 'a@example.com', password: REDACTED, mfaCode: REDACTED, tokens: REDACTED });
      expect((await audit.verifyChain()).valid).toBe(true);
    });
  });

  describe('GET /admin/audit-logs', () => {
    const api = () => new IdentityClient(t.baseUrl);
    let admin: string;
    let user: { accessToken: string; user: { id: string } };
    let developer: string;
    const list = (query = '', token = admin) => http(t.baseUrl, 'GET', `/api/v1/admin/audit-logs${query}`, { token });

    /** Records with controlled timestamps, for the date filters. */
    const recordAt = async (iso: string, overrides: Partial<AuditEntry>) => {
      const spy = jest.spyOn(t.app.get(Clock), 'now').mockReturnValue(new Date(iso));
      try {
        await audit.recordStandalone(entry(overrides));
      } finally {
        spy.mockRestore();
      }
    };

    beforeAll(async () => {
      admin = await api().adminToken();
      user = await api().session('audit.reader@example.com');
      const dev = await api().session('audit.dev@example.com');
      expect((await api().setRoles(admin, dev.user.id, ['developer'])).status).toBe(200);
      developer = (await api().login('audit.dev@example.com')).body.accessToken;
      await recordAt('2031-01-01T00:00:00.000Z', { action: 'test.window', userId: 'usr_w1', severity: 'info' });
      await recordAt('2031-01-02T12:00:00.000Z', { action: 'test.window', userId: 'usr_w2', severity: 'warning' });
      await recordAt('2031-01-03T23:59:59.999Z', { action: 'test.window', userId: 'usr_w1', severity: 'critical' });
    });

    it('requires authentication', async () => {
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs')).status).toBe(401);
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify')).status).toBe(401);
    });

    it('is forbidden to users and developers', async () => {
      for (const token of [user.accessToken, developer]) {
        const res = await list('', token);
        expect(res.status).toBe(403);
        expect(res.body.error).toBe('FORBIDDEN');
        expect(res.body.logs).toBeUndefined();
        expect((await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token })).status).toBe(403);
      }
    });

    it('lists records newest first with exactly the contract fields, the chain columns kept internal', async () => {
      const res = await list();
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['logs', 'pagination']);
      const { logs } = res.body;
      expect(logs.length).toBeGreaterThan(0);
      for (const log of logs) expect(Object.keys(log).sort()).toEqual(CONTRACT_FIELDS);
      const times = logs.map((log: { timestamp: string }) => Date.parse(log.timestamp));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      expect(res.text).not.toMatch(/prev_?hash|"seq"/i);
    });

    it('shows the security events of real requests, with client details and no secrets', async () => {
      const reader = await api().login('audit.reader@example.com', PASSWORD, { 'user-agent': 'audit-e2e/1.0' });
      expect(reader.status).toBe(200);
      const res = await list(`?userId=${user.user.id}&action=auth.login`);
      expect(res.status).toBe(200);
      expect(res.body.logs[0]).toMatchObject({
        userId: user.user.id,
        action: 'auth.login',
        result: 'success',
        ipAddress: '127.0.0.1',
        userAgent: 'audit-e2e/1.0',
      });
      const everything = await list('?limit=100');
      for (const secret of [PASSWORD, reader.body.accessToken, reader.body.refreshToken]) expect(everything.text).not.toContain(secret);
    });

    it('filters by user, action, severity and time window', async () => {
      const window = '&startDate=2031-01-01T00:00:00Z&endDate=2031-01-03T23:59:59.999Z';
      const ids = (res: { body: { logs: Array<{ userId: string; severity: string; timestamp: string }> } }) =>
        res.body.logs.map((log) => `${log.userId}/${log.severity}/${log.timestamp}`);

      expect(ids(await list(`?action=test.window${window}`))).toEqual([
        'usr_w1/critical/2031-01-03T23:59:59.999Z',
        'usr_w2/warning/2031-01-02T12:00:00.000Z',
        'usr_w1/info/2031-01-01T00:00:00.000Z',
      ]);
      expect(ids(await list('?action=test.window&userId=usr_w1'))).toEqual([
        'usr_w1/critical/2031-01-03T23:59:59.999Z',
        'usr_w1/info/2031-01-01T00:00:00.000Z',
      ]);
      expect(ids(await list('?action=test.window&severity=warning'))).toEqual(['usr_w2/warning/2031-01-02T12:00:00.000Z']);
      expect(ids(await list('?action=test.window&startDate=2031-01-01T00:00:00.001Z&endDate=2031-01-03T23:59:59.998Z'))).toEqual([
        'usr_w2/warning/2031-01-02T12:00:00.000Z',
      ]);
      // An offset other than Z names the same instant.
      expect(ids(await list('?action=test.window&startDate=2031-01-02T13:00:00%2B01:00&endDate=2031-01-02T13:00:00%2B01:00'))).toEqual([
        'usr_w2/warning/2031-01-02T12:00:00.000Z',
      ]);
      const none = await list('?action=test.window&userId=usr_nobody');
      expect(none.body).toEqual({ logs: [], pagination: { page: 1, limit: 20, total: 0, pages: 0 } });
    });

    it('paginates', async () => {
      const first = await list('?action=test.window&limit=2');
      expect(first.body.pagination).toEqual({ page: 1, limit: 2, total: 3, pages: 2 });
      expect(first.body.logs).toHaveLength(2);
      const second = await list('?action=test.window&limit=2&page=2');
      expect(second.body.pagination).toEqual({ page: 2, limit: 2, total: 3, pages: 2 });
      expect(second.body.logs.map((log: { userId: string }) => log.userId)).toEqual(['usr_w1']);
      expect((await list('?action=test.window&limit=2&page=3')).body.logs).toEqual([]);
      expect((await list('?limit=100')).status).toBe(200);
    });

    it.each([
      ['limit above 100', '?limit=101', 'limit'],
      ['limit 0', '?limit=0', 'limit'],
      ['page 0', '?page=0', 'page'],
      ['a non-numeric page', '?page=two', 'page'],
      ['a start that is not a date-time', '?startDate=yesterday', 'startDate'],
      ['a date without a time', '?startDate=2031-01-01', 'startDate'],
      ['a date-time without an offset', '?endDate=2031-01-01T00:00:00', 'endDate'],
      ['an unknown severity', '?severity=fatal', 'severity'],
      ['a start after the end', '?startDate=2031-01-02T00:00:00Z&endDate=2031-01-01T00:00:00Z', 'startDate'],
      ['an unknown parameter', '?foo=bar', 'foo'],
    ])('refuses %s with 400', async (_case, query, field) => {
      const res = await list(query);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('VALIDATION_ERROR');
      expect(res.body.details.map((detail: { field: string }) => detail.field)).toContain(field);
    });

    it('verifies the chain over HTTP', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin });
      expect(res.status).toBe(200);
      const all = await rows();
      const last = all[all.length - 1];
      expect(res.body).toEqual({
        valid: true,
        checked: all.length,
        firstInvalid: null,
        unkeyedRecords: 0,
        head: { seq: Number(last.seq), id: last.id, hash: last.hash },
      });
    });

    it('documents both routes in the OpenAPI document', async () => {
      const doc = (await http(t.baseUrl, 'GET', '/api/docs-json')).body;
      const get = doc.paths['/admin/audit-logs'].get;
      expect(get.tags).toEqual(['Admin']);
      // Roles() and RequirePermissions() each add the entry; duplicates are harmless but are not ours to dedupe.
      expect(new Set(get.security.map((entry: unknown) => JSON.stringify(entry)))).toEqual(new Set(['{"BearerAuth":[]}']));
      expect(get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
        'action',
        'endDate',
        'limit',
        'page',
        'severity',
        'startDate',
        'userId',
      ]);
      const severity = get.parameters.find((p: { name: string }) => p.name === 'severity');
      expect(severity.schema.enum).toEqual(['info', 'warning', 'error', 'critical']);
      expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403']));
      const listSchema = doc.components.schemas[get.responses['200'].content['application/json'].schema.$ref.split('/').pop()];
      expect(Object.keys(listSchema.properties).sort()).toEqual(['logs', 'pagination']);
      expect(Object.keys(doc.components.schemas.AuditLog.properties).sort()).toEqual(CONTRACT_FIELDS);
      expect(doc.paths['/admin/audit-logs/verify'].get.tags).toEqual(['Admin']);
    });

    it("keeps the first administrator's password out of its creation record", async () => {
      const res = await list('?action=admin.user.created');
      expect(res.status).toBe(200);
      expect(res.body.logs.length).toBeGreaterThanOrEqual(1);
      expect(res.text).not.toContain(IDENTITY_ENV.ADMIN_PASSWORD);
    });
  });

  describe('append-only at the database', () => {
    it.each([
      ['UPDATE', `UPDATE audit_logs SET action = 'test.rewritten'`],
      ['DELETE', `DELETE FROM audit_logs`],
      ['TRUNCATE', `TRUNCATE audit_logs`],
    ])('refuses %s', async (_operation, sql) => {
      const before = await rows();
      await expect(dataSource.query(sql)).rejects.toThrow(/append-only/);
      expect(await rows()).toEqual(before);
    });

    it('refuses them inside a transaction too, rolling it back', async () => {
      await expect(
        dataSource.transaction(async (manager) => {
          await audit.record(manager, entry({ action: 'test.then_delete' }));
          await manager.query(`DELETE FROM audit_logs WHERE action = 'test.then_delete'`);
        }),
      ).rejects.toThrow(/append-only/);
      expect(await countOf('test.then_delete')).toBe(0);
    });
  });

  describe('tamper detection', () => {
    let middle: StoredRow;
    let next: StoredRow;

    beforeAll(async () => {
      for (let i = 0; i < 5; i += 1) await audit.recordStandalone(entry({ action: 'test.tamper_target', details: { i } }));
      const targets = (await rows()).filter((row) => row.action === 'test.tamper_target');
      [middle, next] = [targets[2], targets[3]];
    });

    afterEach(async () => {
      // Each case restores the row it tampered with, so the next one starts from a valid chain.
      expect(await audit.verifyChain()).toMatchObject({ valid: true, firstInvalid: null });
    });

    it('reports a row whose content was edited', async () => {
      await tamper(`UPDATE audit_logs SET details = $1::jsonb WHERE id = $2`, [JSON.stringify({ i: 99 }), middle.id]);
      const result = await audit.verifyChain();
      expect(result.valid).toBe(false);
      expect(result.firstInvalid).toEqual({ id: middle.id, seq: Number(middle.seq), reason: expect.stringMatching(/hash does not match/) });
      await tamper(`UPDATE audit_logs SET details = $1::jsonb WHERE id = $2`, [JSON.stringify(middle.details), middle.id]);
    });

    it.each([
      ['user_id', `'usr_someone_else'`],
      ['timestamp', `timestamp + interval '1 second'`],
      ['severity', `'critical'`],
      ['result', `'failure'`],
    ])('reports a row whose %s was edited', async (column, expression) => {
      const [original] = await dataSource.query(`SELECT ${column} AS value FROM audit_logs WHERE id = $1`, [middle.id]);
      await tamper(`UPDATE audit_logs SET ${column} = ${expression} WHERE id = $1`, [middle.id]);
      expect((await audit.verifyChain()).firstInvalid?.id).toBe(middle.id);
      await tamper(`UPDATE audit_logs SET ${column} = $1 WHERE id = $2`, [original.value, middle.id]);
    });

    it('is reported by the audit:verify command, with exit code 65', async () => {
      const run = async () => {
        const stdout = new PassThrough();
        let out = '';
        stdout.on('data', (chunk) => (out += chunk));
        const io = { stdin: process.stdin, stdout, stderr: new PassThrough(), adminPassword: undefined };
        const code = await auditVerifyCommand.run({ app: t.app, args: [], ...io });
        return { code, out };
      };
      expect(await run()).toEqual({ code: 0, out: expect.stringMatching(/^Audit chain intact: \d+ records checked\n$/) });
      await tamper(`UPDATE audit_logs SET details = '{"i": 7}'::jsonb WHERE id = $1`, [middle.id]);
      const broken = await run();
      expect(broken.code).toBe(65);
      expect(broken.out).toContain(`BROKEN at record ${middle.id} (seq ${middle.seq})`);
      await tamper(`UPDATE audit_logs SET details = $1::jsonb WHERE id = $2`, [JSON.stringify(middle.details), middle.id]);
    });

    it('reports a row whose hash was edited', async () => {
      await tamper(`UPDATE audit_logs SET hash = $1 WHERE id = $2`, ['f'.repeat(64), middle.id]);
      expect((await audit.verifyChain()).firstInvalid).toMatchObject({
        id: middle.id,
        reason: expect.stringMatching(/hash does not match/),
      });
      await tamper(`UPDATE audit_logs SET hash = $1 WHERE id = $2`, [middle.hash, middle.id]);
    });

    it('reports a row that was edited and re-hashed (its MAC)', async () => {
      const { computeAuditHash } = await import('@app/audit');
      const [stored] = await dataSource.query(`SELECT * FROM audit_logs WHERE id = $1`, [middle.id]);
      const forged = computeAuditHash(stored.prev_hash, {
        id: stored.id,
        timestamp: stored.timestamp.toISOString(),
        userId: stored.user_id,
        action: stored.action,
        resource: stored.resource,
        details: { i: 42 },
        result: stored.result,
        ipAddress: stored.ip_address,
        userAgent: stored.user_agent,
        severity: stored.severity,
        metadata: stored.metadata,
      });
      await tamper(`UPDATE audit_logs SET details = $1::jsonb, hash = $2 WHERE id = $3`, [JSON.stringify({ i: 42 }), forged, middle.id]);
      // Its MAC no longer matches its hash: caught at the row itself, before its successor's link.
      expect((await audit.verifyChain()).firstInvalid).toMatchObject({
        id: middle.id,
        reason: expect.stringMatching(/MAC does not match/),
      });
      await tamper(`UPDATE audit_logs SET details = $1::jsonb, hash = $2 WHERE id = $3`, [
        JSON.stringify(middle.details),
        middle.hash,
        middle.id,
      ]);
    });

    it('reports the row after one that was deleted from the middle', async () => {
      await tamper(`DELETE FROM audit_logs WHERE id = $1`, [middle.id]);
      const result = await audit.verifyChain();
      expect(result.valid).toBe(false);
      expect(result.firstInvalid).toEqual({ id: next.id, seq: Number(next.seq), reason: expect.stringMatching(/prev_hash/) });
      await restore(middle);
    });

    it('reports the new first row when the oldest rows were deleted', async () => {
      const [first, second] = await rows();
      await tamper(`DELETE FROM audit_logs WHERE id = $1`, [first.id]);
      expect((await audit.verifyChain()).firstInvalid).toEqual({
        id: second.id,
        seq: Number(second.seq),
        reason: expect.stringMatching(/genesis/),
      });
      await restore(first);
    });

    it('walks long chains in batches', async () => {
      await dataSource.transaction(async (manager) => {
        for (let i = 0; i < 1100; i += 1) await audit.record(manager, entry({ action: 'test.bulk', details: { i } }));
      });
      const total = (await rows()).length;
      expect(await audit.verifyChain()).toMatchObject({ valid: true, checked: total, firstInvalid: null, unkeyedRecords: 0 });
      const [late] = await dataSource.query(`SELECT id, seq FROM audit_logs WHERE action = 'test.bulk' ORDER BY seq DESC LIMIT 1 OFFSET 5`);
      await tamper(`UPDATE audit_logs SET action = 'test.bulk_edited' WHERE id = $1`, [late.id]);
      expect((await audit.verifyChain()).firstInvalid).toMatchObject({ id: late.id, seq: Number(late.seq) });
      await tamper(`UPDATE audit_logs SET action = 'test.bulk' WHERE id = $1`, [late.id]);
    });

    const restore = (row: StoredRow) =>
      tamper(
        `INSERT INTO audit_logs (seq, id, timestamp, user_id, action, resource, details, result, ip_address, user_agent, severity, metadata, prev_hash, hash, mac)
         OVERRIDING SYSTEM VALUE
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12::jsonb, $13, $14, $15)`,
        [
          row.seq,
          row.id,
          row.timestamp,
          row.user_id,
          row.action,
          row.resource,
          JSON.stringify(row.details),
          row.result,
          row.ip_address,
          row.user_agent,
          row.severity,
          JSON.stringify(row.metadata),
          row.prev_hash,
          row.hash,
          row.mac,
        ],
      );
  });
});
