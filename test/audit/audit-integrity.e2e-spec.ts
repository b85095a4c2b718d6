import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { DataSource } from 'typeorm';
import { AuditCheckpoint, AuditLogRow, AuditService, checkCheckpoint, computeAuditHash, auditRowContent } from '@app/audit';
import { auditVerifyCheckpointCommand } from '../../apps/server/src/cli/audit-verify-checkpoint.command';
import { auditVerifyCommand } from '../../apps/server/src/cli/audit-verify.command';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, toolsEnv } from '../tools/tools-test-kit';

/**
 * The attack the assessment ran: the application's role owns audit_logs, so it can switch the
 * append-only triggers off, edit a record and recompute every SHA-256 link after it. The keyed
 * MACs (AUDIT_HMAC_KEY, never in the database) make that rewrite visible to `verify`, and a
 * checkpoint exported before it fails offline verification after, with the public key only.
 */
describe.each(DATABASE_KINDS)('audit chain rewritten by the table owner (%s)', (kind) => {
  let t: TestApp;
  let admin: Caller;
  let audit: AuditService;
  let dataSource: DataSource;
  let checkpoint: AuditCheckpoint;
  let publicKey: string;
  const files = mkdtempSync(join(tmpdir(), 'smcp-checkpoint-'));

  beforeAll(async () => {
    t = await startTestApp(kind, { env: toolsEnv({ AUDIT_HMAC_KEY: 'k3y-for-the-audit-chain-e2e-0123456789abcdef' }) });
    admin = await login(t, ADMIN_EMAIL);
    audit = t.app.get(AuditService);
    dataSource = t.app.get(DataSource);
    for (let i = 0; i < 6; i += 1)
      await audit.recordStandalone({ action: 'test.ledger', result: 'success', severity: 'info', details: { amount: i } });
  });
  afterAll(() => t?.close());

  const rows = (): Promise<AuditLogRow[]> => dataSource.query(`SELECT * FROM audit_logs ORDER BY seq`);
  const verifyOverHttp = async () => {
    const res = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
    expect(res.status).toBe(200);
    return res.body;
  };
  const cliVerify = async () => {
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (chunk) => (out += chunk));
    const code = await auditVerifyCommand.run({
      app: t.app,
      args: [],
      stdin: process.stdin,
      stdout,
      stderr: new PassThrough(),
      adminPassword: undefined,
    });
    return { code, out };
  };
  /** The auditor's check: the CLI against PostgreSQL; the same function over the embedded database. */
  const offlineCheck = async (): Promise<{ ok: boolean; out: string }> => {
    const checkpointFile = join(files, 'checkpoint.json');
    const keyFile = join(files, 'public-key.pem');
    writeFileSync(checkpointFile, JSON.stringify(checkpoint));
    writeFileSync(keyFile, publicKey);
    if (t.database) {
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (chunk) => (out += chunk));
      const code = await auditVerifyCheckpointCommand.run({
        args: ['--checkpoint', checkpointFile, '--public-key', keyFile],
        env: { DATABASE_URL: t.database.url },
        stdout,
        stderr: new PassThrough(),
      });
      expect([0, 65]).toContain(code);
      return { ok: code === 0, out };
    }
    const result = await checkCheckpoint(
      (afterSeq, limit) => dataSource.query(`SELECT * FROM audit_logs WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit]),
      checkpoint,
      publicKey,
    );
    return { ok: result.ok, out: result.reason ?? '' };
  };

  it('exports a signed checkpoint of a chain that verifies, which holds offline', async () => {
    const res = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/checkpoint', { token: admin.token });
    expect(res.status).toBe(200);
    checkpoint = res.body;
    const key = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/checkpoint-key', { token: admin.token });
    publicKey = key.body.publicKey;
    expect(key.body.keyId).toBe(checkpoint.keyId);
    const all = await rows();
    const head = all[all.length - 1];
    expect(checkpoint).toMatchObject({ format: 'smcp-audit-checkpoint/1', seq: Number(head.seq), id: head.id, hash: head.hash });
    expect(all.every((row) => /^[0-9a-f]{64}$/.test(String(row.mac)))).toBe(true);
    expect(await verifyOverHttp()).toMatchObject({ valid: true, unkeyedRecords: 0 });
    expect(await offlineCheck()).toEqual({ ok: true, out: kind === 'postgres' ? expect.stringMatching(/^Checkpoint holds: seq \d+/) : '' });
    // A checkpoint with one field changed no longer carries a valid signature.
    const original = checkpoint;
    checkpoint = { ...original, seq: original.seq - 1 };
    expect((await offlineCheck()).out).toMatch(/signature does not match/);
    checkpoint = original;
  });

  it('shows a record edited with the triggers disabled and every SHA-256 link recomputed', async () => {
    const all = await rows();
    const target = all.find((row) => row.action === 'test.ledger' && row.details.amount === 2)!;
    // Exactly as an attacker with the owner's rights would: no key, so the MACs stay as they were.
    await dataSource.transaction(async (manager) => {
      await manager.query(`ALTER TABLE audit_logs DISABLE TRIGGER USER`);
      let prev = target.prev_hash;
      for (const row of all.filter((r) => Number(r.seq) >= Number(target.seq))) {
        const content = auditRowContent(row);
        if (row.id === target.id) content.details = { amount: 2000 };
        const hash = computeAuditHash(prev, content);
        await manager.query(`UPDATE audit_logs SET details = $1::jsonb, prev_hash = $2, hash = $3 WHERE id = $4`, [
          JSON.stringify(content.details),
          prev,
          hash,
          row.id,
        ]);
        prev = hash;
      }
      await manager.query(`ALTER TABLE audit_logs ENABLE TRIGGER USER`);
    });
    const rewritten = await rows();
    // The SHA-256 chain alone would pass: every link and content hash is consistent.
    rewritten.forEach((row, i) => {
      expect(row.hash).toBe(computeAuditHash(i === 0 ? '0'.repeat(64) : rewritten[i - 1].hash, auditRowContent(row)));
    });

    const verification = await verifyOverHttp();
    expect(verification.valid).toBe(false);
    expect(verification.firstInvalid).toEqual({
      id: target.id,
      seq: Number(target.seq),
      reason: expect.stringMatching(/MAC does not match/),
    });
    const cli = await cliVerify();
    expect(cli.code).toBe(65);
    expect(cli.out).toContain(`BROKEN at record ${target.id} (seq ${target.seq})`);
    // No checkpoint is signed over a broken chain.
    const refused = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/checkpoint', { token: admin.token });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe('AUDIT_CHAIN_BROKEN');

    // The checkpoint exported before now fails offline, with nothing but the public key.
    const offline = await offlineCheck();
    expect(offline.ok).toBe(false);
    expect(offline.out).toMatch(/not the one the checkpoint signed/);
  });

  it('shows MACs removed after keyed records (a downgrade to the unkeyed chain)', async () => {
    // Ahead of the record rewritten above, so this is the first thing the walk meets.
    const ledger = (await rows()).filter((row) => row.action === 'test.ledger');
    const victim = ledger[1];
    await dataSource.transaction(async (manager) => {
      await manager.query(`ALTER TABLE audit_logs DISABLE TRIGGER USER`);
      await manager.query(`UPDATE audit_logs SET mac = NULL WHERE id = $1`, [victim.id]);
      await manager.query(`ALTER TABLE audit_logs ENABLE TRIGGER USER`);
    });
    expect((await verifyOverHttp()).firstInvalid).toEqual({
      id: victim.id,
      seq: Number(victim.seq),
      reason: expect.stringMatching(/no MAC after keyed rows/),
    });
  });
});
