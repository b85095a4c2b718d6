import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { checkpointSignatureValid, ExportedRecord } from '@app/audit';
import type { AuditCheckpoint } from '@app/audit';
import { ADMIN_EMAIL, Caller, identityEnv, login, signUp } from '../support/identity';
import { waitFor } from '../support/polling';
import { DATABASE_KINDS, DatabaseKind, http, startTestApp, TestApp } from '../support/test-app';
import { dedup, exportStatus, SECRET, SinkStatus, WebhookReceiver } from './audit-export-kit';

/**
 * Audit export end to end, with real parts: the gateway on PostgreSQL (and the embedded database),
 * a webhook receiver of our own on loopback that checks every signature, and the JSON-lines file.
 * The scenario: under load (sign-ups, logins, tool executions), the webhook is dead for
 * 30 s (first accepting connections and never answering, then not listening at all) and the
 * gateway restarts once meanwhile; afterwards every audit record of the database has arrived, in
 * seq order, none missing, duplicates only as identical re-sends, and requests kept succeeding
 * while the sink hung.
 */

const SINK_DEAD_MS = 30_000;

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
addFormats(ajv);
const validateRecord = ajv.compile(
  JSON.parse(readFileSync(join(__dirname, '../../libs/audit/src/export/audit-export.schema.json'), 'utf8')),
);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface DbRecord {
  seq: number;
  id: string;
  hash: string;
}

async function databaseRecords(t: TestApp): Promise<DbRecord[]> {
  const rows: Array<{ seq: string; id: string; hash: string }> = await t.app
    .get(DataSource)
    .query(`SELECT seq, id, hash FROM audit_logs ORDER BY seq`);
  return rows.map((row) => ({ seq: Number(row.seq), id: row.id, hash: row.hash }));
}

function fileRecords(path: string): ExportedRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ExportedRecord);
}

/** Workers signing in and running a tool until stopped; counts what completed and how. */
class Load {
  ok = 0;
  failed: string[] = [];
  private running = false;
  private workers: Array<Promise<void>> = [];

  constructor(
    private readonly callers: Caller[],
    private readonly emails: string[],
  ) {}

  start(t: TestApp): void {
    this.running = true;
    this.workers = this.callers.map((_, i) => this.work(t, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async work(t: TestApp, i: number): Promise<void> {
    while (this.running) {
      const caller = await login(t, this.emails[i]).catch((error: Error) => {
        this.failed.push(`login: ${error.message}`);
        return undefined;
      });
      if (!caller) continue;
      this.ok += 1;
      const res = await http(t.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
        token: caller.token,
        body: { parameters: { message: `load ${i}` } },
      }).catch((error: Error) => error);
      if (res instanceof Error) this.failed.push(`execute: ${res.message}`);
      else if (res.status === 200) this.ok += 1;
      else this.failed.push(`execute: ${res.status}`);
    }
  }
}

function metricValue(text: string, name: string, sink: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="${sink}"}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('audit export: a dead webhook for 30 s and a gateway restart under load (postgres)', () => {
  const receiver = new WebhookReceiver();
  let dir: string;
  let file: string;
  let env: Record<string, string>;
  let t: TestApp;
  let database: DbRecord[];
  let publicKey: string;
  const observed = {
    okBeforeHang: 0,
    okWhileHanging: 0,
    failedWhileHanging: [] as string[],
    hungRequests: 0,
    deadStatus: undefined as SinkStatus | undefined,
    fileStatusWhileWebhookDead: undefined as SinkStatus | undefined,
    lagMetricWhileDead: undefined as number | undefined,
    failuresMetricWhileDead: undefined as number | undefined,
    sinkDeadMs: 0,
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smcp-export-'));
    file = join(dir, 'audit.jsonl');
    await receiver.start();
    env = identityEnv({
      AUDIT_EXPORT_WEBHOOK_URL: receiver.url,
      AUDIT_EXPORT_WEBHOOK_SECRET: SECRET,
      AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS: '1500',
      AUDIT_EXPORT_FILE: file,
      AUDIT_EXPORT_BATCH_SIZE: '25',
      AUDIT_EXPORT_INTERVAL_MS: '100',
      AUDIT_EXPORT_RETRY_BASE_MS: '100',
      AUDIT_EXPORT_RETRY_MAX_MS: '1000',
      AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '1000',
    });
    t = await startTestApp('postgres', { env });
    const emails = [1, 2, 3, 4].map((n) => `load${n}@example.com`);
    const callers = await Promise.all(emails.map((email) => signUp(t, email)));
    const load = new Load(callers, emails);

    // Sink up.
    load.start(t);
    await waitFor('records at the webhook', () => receiver.records().length > 0, 60_000);
    await sleep(2_000);
    observed.okBeforeHang = load.ok;

    // The sink accepts connections and never answers: requests must go on completing.
    receiver.mode = 'hang';
    const deadSince = Date.now();
    const okAtHang = load.ok;
    const failedAtHang = load.failed.length;
    await waitFor('the exporter to meet the hanging sink', () => receiver.hung > 0, 60_000);
    await sleep(8_000);
    observed.okWhileHanging = load.ok - okAtHang;
    observed.failedWhileHanging = load.failed.slice(failedAtHang);
    observed.hungRequests = receiver.hung;
    await load.stop();

    // The gateway restarts once while the sink is still dead (now not even listening).
    await receiver.kill();
    await t.stop();
    t = await startTestApp('postgres', { env, reuse: t });
    load.start(t);
    const admin = await login(t, ADMIN_EMAIL);
    const deadStatus = await waitFor(
      'the new gateway to report the dead sink',
      async () => (await exportStatus(t, admin)).find((s) => s.sink === 'webhook' && s.lastError !== null && (s.lagRecords ?? 0) > 0),
      60_000,
    );
    observed.deadStatus = deadStatus;
    observed.fileStatusWhileWebhookDead = (await exportStatus(t, admin)).find((s) => s.sink === 'file');
    const metrics = (await http(t.baseUrl, 'GET', '/api/v1/metrics', { token: admin.token })).text;
    observed.lagMetricWhileDead = metricValue(metrics, 'audit_export_lag_records', 'webhook');
    observed.failuresMetricWhileDead = metricValue(metrics, 'audit_export_failures_total', 'webhook');
    // A timer may fire a millisecond early by Date.now(): wait until the outage has really lasted its length.
    for (let remaining = SINK_DEAD_MS - (Date.now() - deadSince); remaining > 0; remaining = SINK_DEAD_MS - (Date.now() - deadSince))
      await sleep(remaining + 1);
    observed.sinkDeadMs = Date.now() - deadSince;

    // The sink comes back on the same address; a little more load, then everything must arrive.
    receiver.mode = 'up';
    await receiver.start();
    await sleep(2_000);
    await load.stop();
    database = await databaseRecords(t);
    const ids = (stream: ExportedRecord[]) => new Set(dedup(stream).unique.map((r) => r.metadata.uid));
    await waitFor(
      'every database record at the webhook and in the file',
      () => {
        const [atWebhook, inFile] = [ids(receiver.records()), ids(fileRecords(file))];
        return database.every((r) => atWebhook.has(r.id) && inFile.has(r.id));
      },
      120_000,
    );
    publicKey = (await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/checkpoint-key', { token: admin.token })).body.publicKey;
  }, 900_000);

  afterAll(async () => {
    await t?.close();
    await receiver.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exercised the scenario: load before, a sink dead for 30 s, requests answered while it hung', () => {
    expect(database.length).toBeGreaterThan(20);
    expect(observed.okBeforeHang).toBeGreaterThan(0);
    expect(observed.sinkDeadMs).toBeGreaterThanOrEqual(SINK_DEAD_MS);
    // The exporter had a delivery hanging at the sink, and requests went on completing meanwhile.
    expect(observed.hungRequests).toBeGreaterThan(0);
    expect(observed.okWhileHanging).toBeGreaterThan(0);
    expect(observed.failedWhileHanging).toEqual([]);
  });

  it('showed the dead sink to administrators and in the metrics, while the file sink kept up', () => {
    expect(observed.deadStatus).toMatchObject({ sink: 'webhook', exporting: true });
    expect(observed.deadStatus!.consecutiveFailures).toBeGreaterThan(0);
    expect(observed.deadStatus!.lastError).toMatch(/webhook (unreachable|did not answer)/);
    expect(observed.lagMetricWhileDead).toBeGreaterThan(0);
    expect(observed.failuresMetricWhileDead).toBeGreaterThan(0);
    expect(observed.fileStatusWhileWebhookDead).toMatchObject({ sink: 'file', lastError: null });
  });

  it('delivered every database record to the webhook, in seq order, each signed batch checked', () => {
    expect(receiver.badSignatures).toBe(0);
    const { unique } = dedup(receiver.records());
    expect(unique.map((r) => r.metadata.uid)).toEqual(database.map((r) => r.id));
    const seqs = unique.map((r) => r.smcp.seq);
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1])).toBe(true);
    // Each record links to the one before it: the stream is the chain, nothing left out.
    const links = unique.map((r) => ({ prev: (r.smcp as { prev_hash: string }).prev_hash, hash: r.smcp.hash }));
    expect(links.slice(1).every((link, i) => link.prev === links[i].hash)).toBe(true);
    expect(unique.map((r) => r.smcp.hash)).toEqual(database.map((r) => r.hash));
  });

  it('repeated a record only as an identical re-send of a batch that was not confirmed', () => {
    const { repeats } = dedup(receiver.records());
    for (const { first, again } of repeats) expect(again).toEqual(first);
  });

  it('kept the records in the published schema', () => {
    const invalid = receiver.records().filter((record) => !validateRecord(record));
    expect(invalid.slice(0, 3)).toEqual([]);
  });

  it('streamed signed checkpoints that verify with the public key and name rows of the chain', () => {
    const checkpoints = receiver
      .records()
      .filter((r) => r.smcp.record_type === 'chain_checkpoint')
      .map((r) => (r.smcp as { checkpoint: AuditCheckpoint }).checkpoint);
    expect(checkpoints.length).toBeGreaterThan(0);
    const bySeq = new Map(database.map((r) => [r.seq, r]));
    for (const checkpoint of checkpoints) {
      expect(checkpointSignatureValid(checkpoint, publicKey)).toBe(true);
      expect({ id: checkpoint.id, hash: checkpoint.hash }).toEqual({
        id: bySeq.get(checkpoint.seq)?.id,
        hash: bySeq.get(checkpoint.seq)?.hash,
      });
    }
  });

  it('wrote the same records, in the same order, to the JSON-lines file', () => {
    const stream = fileRecords(file);
    const { unique, repeats } = dedup(stream);
    expect(unique.map((r) => r.metadata.uid)).toEqual(database.map((r) => r.id));
    for (const { first, again } of repeats) expect(again).toEqual(first);
    const webhook = new Map(dedup(receiver.records()).unique.map((r) => [r.metadata.uid, r]));
    expect(unique.every((r) => JSON.stringify(r) === JSON.stringify(webhook.get(r.metadata.uid)))).toBe(true);
  });
});

describe.each(DATABASE_KINDS)('audit export: the file sink resumes from its cursor after a restart (%s)', (kind: DatabaseKind) => {
  let dir: string;
  let t: TestApp;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'smcp-export-'));
  });

  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('neither loses nor re-sends what was confirmed before the restart', async () => {
    const file = join(dir, 'audit.jsonl');
    const env = identityEnv({ AUDIT_EXPORT_FILE: file, AUDIT_EXPORT_INTERVAL_MS: '100', AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '0' });
    t = await startTestApp(kind, { env });
    await signUp(t, 'first@example.com');
    let database = await databaseRecords(t);
    await waitFor('the first records in the file', () => dedup(fileRecords(file)).unique.length === database.length, 60_000);
    await t.stop();
    const linesBefore = fileRecords(file).length;

    t = await startTestApp(kind, { env, reuse: t });
    await signUp(t, 'second@example.com');
    database = await databaseRecords(t);
    await waitFor('the later records in the file', () => dedup(fileRecords(file)).unique.length === database.length, 60_000);

    const stream = fileRecords(file);
    expect(stream.map((r) => r.metadata.uid)).toEqual(database.map((r) => r.id));
    // A clean stop confirmed everything it wrote: the new process appended only new records.
    expect(stream.slice(linesBefore).every((r) => r.smcp.seq > database[linesBefore - 1].seq)).toBe(true);
    expect(stream.filter((r) => !validateRecord(r))).toEqual([]);
  });
});
