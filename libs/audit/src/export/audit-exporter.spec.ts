import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { BackgroundJobs, Clock, loadConfig } from '@app/core';
import { checkpointSignatureValid } from '../audit-checkpoint';
import { auditRowContent, AuditLogRepository, AuditLogRow } from '../audit-log.repository';
import { computeAuditHash, computeAuditMac, GENESIS_HASH } from '../audit-hash';
import { AuditKeyring } from '../audit-keyring';
import { AuditExportCursor, AuditExportCursorRepository } from './audit-export-cursor.repository';
import type { CheckpointChain, ExportedRecord } from './audit-export.record';
import { AuditExporter } from './audit-exporter.service';

/** The cursor table in memory, with the repository's lease rules. */
class FakeCursors {
  rows = new Map<string, AuditExportCursor & { owner: string | null; until: number }>();
  constructor(private readonly audit: () => AuditLogRow[]) {}
  async ensure(sink: string) {
    if (!this.rows.has(sink))
      this.rows.set(sink, {
        sink,
        lastSeq: '0',
        lastId: null,
        lastHash: GENESIS_HASH,
        deliveredCount: 0,
        lastDeliveredAt: null,
        owner: null,
        until: 0,
      });
  }
  async read(sink: string) {
    return this.rows.get(sink);
  }
  async claim(sink: string, owner: string, leaseMs: number) {
    const row = this.rows.get(sink)!;
    if (row.owner !== null && row.owner !== owner && row.until >= Date.now()) return undefined;
    Object.assign(row, { owner, until: Date.now() + leaseMs });
    return { ...row };
  }
  async advance(sink: string, owner: string, fromSeq: string, to: { seq: string; id: string; hash: string; count: number }) {
    const row = this.rows.get(sink)!;
    if (row.owner !== owner || row.lastSeq !== fromSeq) return false;
    Object.assign(row, {
      lastSeq: to.seq,
      lastId: to.id,
      lastHash: to.hash,
      deliveredCount: row.deliveredCount + to.count,
      lastDeliveredAt: new Date(),
    });
    return true;
  }
  async release(sink: string, owner: string) {
    const row = this.rows.get(sink)!;
    if (row.owner === owner) Object.assign(row, { owner: null, until: 0 });
  }
  async recordsAfter(seq: string) {
    return this.audit().filter((row) => Number(row.seq) > Number(seq)).length;
  }
}

describe('AuditExporter', () => {
  let dir: string;
  let file: string;
  let audit: AuditLogRow[];
  let cursors: FakeCursors;
  let keys: AuditKeyring;
  let now: number;
  const clock = { now: () => new Date(now), nowMs: () => now } as Clock;

  const metric = <T>(make: (name: string) => T) => make(`m_${Math.random().toString(36).slice(2)}`);
  const gauge = () => metric((name) => new Gauge({ name, help: name, labelNames: ['sink'], registers: [] }));
  const counter = () => metric((name) => new Counter({ name, help: name, labelNames: ['sink'], registers: [] }));

  function append(count: number, tamper?: (row: AuditLogRow) => void): void {
    for (let i = 0; i < count; i++) {
      const seq = audit.length + 1;
      const row: AuditLogRow = {
        seq: String(seq),
        id: `aud_${seq}`,
        timestamp: new Date(1_700_000_000_000 + seq),
        user_id: 'usr_1',
        action: 'auth.login',
        resource: null,
        details: {},
        result: 'success',
        ip_address: null,
        user_agent: null,
        severity: 'info',
        metadata: {},
        prev_hash: audit.at(-1)?.hash ?? GENESIS_HASH,
        hash: '',
        mac: null,
      };
      row.hash = computeAuditHash(row.prev_hash, auditRowContent(row));
      row.mac = computeAuditMac(keys.macKey, row.hash);
      tamper?.(row);
      audit.push(row);
    }
  }

  function exporter(env: Record<string, string> = {}): AuditExporter {
    const config = loadConfig({
      DATA_DIR: dir,
      AUDIT_EXPORT_FILE: file,
      AUDIT_EXPORT_BATCH_SIZE: '3',
      AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '0',
      ...env,
    });
    const rows = { rowsAfter: async (after: string, limit: number) => audit.filter((r) => Number(r.seq) > Number(after)).slice(0, limit) };
    return new AuditExporter(
      config,
      cursors as unknown as AuditExportCursorRepository,
      rows as unknown as AuditLogRepository,
      keys,
      clock,
      new BackgroundJobs(),
      gauge(),
      counter(),
      counter(),
      gauge(),
    );
  }

  const exported = (): ExportedRecord[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ExportedRecord);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'smcp-exporter-'));
    mkdirSync(join(dir, 'out'));
    file = join(dir, 'out', 'audit.jsonl');
    audit = [];
    cursors = new FakeCursors(() => audit);
    keys = new AuditKeyring(loadConfig({ AUDIT_HMAC_KEY: 'q8Vd2Lk9Zp4Wn7Rt1Yx6Bc3Hf5Jm0Gs8Ua2Ke', DATA_DIR: tmpdir() }));
    now = 1_800_000_000_000;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('delivers everything after the cursor in seq order, batch by batch, advancing the cursor after each', async () => {
    append(7);
    const subject = exporter();
    await subject.exportOnce();
    expect(exported().map((r) => r.metadata.uid)).toEqual(audit.map((r) => r.id));
    expect(cursors.rows.get('file')).toMatchObject({ lastSeq: '7', lastId: 'aud_7', lastHash: audit[6].hash, deliveredCount: 7 });
    expect(subject.status()[0]).toMatchObject({ sink: 'file', lagRecords: 0, cursorSeq: 7, exporting: true, lastError: null });

    append(2);
    await subject.exportOnce();
    expect(exported().map((r) => r.smcp.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keeps the cursor where it was when a delivery fails, waits a backoff, then re-sends from there', async () => {
    append(2);
    const subject = exporter({ AUDIT_EXPORT_RETRY_BASE_MS: '1000', AUDIT_EXPORT_RETRY_MAX_MS: '8000' });
    rmSync(join(dir, 'out'), { recursive: true }); // the sink's directory disappears after start
    await subject.exportOnce();
    const failed = subject.status()[0];
    expect(failed).toMatchObject({ cursorSeq: 0, lagRecords: 2, consecutiveFailures: 1 });
    expect(failed.lastError).toMatch(/ENOENT/);
    const retryAt = Date.parse(failed.nextAttemptAt!);
    expect(retryAt - now).toBeGreaterThanOrEqual(500);
    expect(retryAt - now).toBeLessThanOrEqual(1000);

    mkdirSync(join(dir, 'out'));
    await subject.exportOnce(); // still backing off: nothing sent
    expect(() => readFileSync(file)).toThrow();
    now = retryAt;
    await subject.exportOnce();
    expect(exported().map((r) => r.metadata.uid)).toEqual(['aud_1', 'aud_2']);
    expect(subject.status()[0]).toMatchObject({ cursorSeq: 2, consecutiveFailures: 0, nextAttemptAt: null });
  });

  it('stands by while another process holds the lease, and resumes from the cursor once it is released', async () => {
    append(3);
    await cursors.ensure('file');
    await cursors.claim('file', 'other-replica', 60_000);
    const subject = exporter();
    await subject.exportOnce();
    expect(subject.status()[0]).toMatchObject({ exporting: false, lagRecords: 3 });
    expect(() => readFileSync(file)).toThrow();

    await cursors.release('file', 'other-replica');
    await subject.exportOnce();
    expect(exported().map((r) => r.smcp.seq)).toEqual([1, 2, 3]);
    await subject.beforeApplicationShutdown();
    expect(cursors.rows.get('file')!.owner).toBeNull();
  });

  it('signs a checkpoint over a batch that verifies, and refuses to over one that does not', async () => {
    append(2);
    const subject = exporter({ AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '1000' });
    await subject.exportOnce();
    const checkpoint = exported().find((r) => r.smcp.record_type === 'chain_checkpoint')!.smcp as CheckpointChain;
    expect(checkpoint.checkpoint).toMatchObject({ seq: 2, id: 'aud_2', hash: audit[1].hash });
    expect(checkpointSignatureValid(checkpoint.checkpoint, keys.publicKeyPem)).toBe(true);

    append(1, (row) => (row.details = { rewritten: true }));
    now += 1_000;
    await subject.exportOnce();
    const records = exported();
    // The altered record is still exported (the SIEM should see it), but no checkpoint vouches for it.
    expect(records.at(-1)!.metadata.uid).toBe('aud_3');
    expect(records.filter((r) => r.smcp.record_type === 'chain_checkpoint')).toHaveLength(1);
    expect(subject.status()[0].chainError).toMatch(/aud_3.*hash does not match/);
  });
});
