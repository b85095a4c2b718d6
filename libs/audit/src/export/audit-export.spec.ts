import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@app/core';
import { AUDIT_CHECKPOINT_FORMAT, checkpointSignatureValid, checkpointSigningPayload } from '../audit-checkpoint';
import { AUDIT_ACTIONS } from '../audit-event';
import { computeAuditHash, GENESIS_HASH } from '../audit-hash';
import { AuditKeyring } from '../audit-keyring';
import { AuditLogRow, auditRowContent } from '../audit-log.repository';
import { auditRecordToOcsf, checkpointToOcsf, ExportedRecord } from './audit-export.record';
import { AUDIT_EXPORT_SIGNATURE_HEADER, JsonLinesFileSink, retryDelayMs, WebhookSink } from './audit-export.sinks';

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(__dirname, 'audit-export.schema.json'), 'utf8')));
const errorsOf = (record: unknown) => (validate(record) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));

let seq = 0;
function row(overrides: Partial<AuditLogRow> = {}): AuditLogRow {
  seq += 1;
  const base: AuditLogRow = {
    seq: String(seq),
    id: `aud_${seq}`,
    timestamp: new Date('2026-12-02T10:00:00.123Z'),
    user_id: 'usr_1',
    action: 'auth.login',
    resource: null,
    details: { method: 'password' },
    result: 'success',
    ip_address: '203.0.113.7',
    user_agent: 'agent/1.0',
    severity: 'info',
    metadata: {},
    prev_hash: GENESIS_HASH,
    hash: '',
    mac: 'ab'.repeat(32),
    ...overrides,
  };
  return { ...base, hash: overrides.hash ?? computeAuditHash(base.prev_hash, auditRowContent(base)) };
}

describe('audit export: OCSF mapping', () => {
  it('maps every catalogued action to a record that validates against the published schema', () => {
    for (const action of AUDIT_ACTIONS) {
      for (const result of ['success', 'failure'] as const) {
        const record = auditRecordToOcsf(row({ action, result, severity: result === 'failure' ? 'warning' : 'info' }), '1.2.3');
        expect({ action, errors: errorsOf(record) }).toEqual({ action, errors: [] });
        expect(record.type_uid).toBe(record.class_uid * 100 + record.activity_id);
      }
    }
  });

  it('maps a login to OCSF Authentication / Logon with actor, source address, status and the chain fields', () => {
    const source = row({ action: 'auth.login_failed', result: 'failure', severity: 'warning' });
    const record = auditRecordToOcsf(source, '1.2.3');
    expect(record).toMatchObject({
      class_uid: 3002,
      category_uid: 3,
      activity_id: 1,
      activity_name: 'Logon',
      type_uid: 300201,
      time: Date.parse('2026-12-02T10:00:00.123Z'),
      severity_id: 3,
      status_id: 2,
      status: 'Failure',
      message: 'auth.login_failed',
      actor: { user: { uid: 'usr_1' } },
      user: { uid: 'usr_1' },
      src_endpoint: { ip: '203.0.113.7' },
      http_request: { user_agent: 'agent/1.0' },
      metadata: { uid: source.id, sequence: Number(source.seq), version: '1.3.0', product: { version: '1.2.3' }, log_name: 'audit_logs' },
      smcp: { record_type: 'audit_record', seq: Number(source.seq), hash: source.hash, prev_hash: GENESIS_HASH, mac: source.mac },
    });
    expect(record.unmapped).toEqual({
      action: 'auth.login_failed',
      resource: null,
      result: 'failure',
      severity: 'warning',
      details: { method: 'password' },
      metadata: {},
      timestamp: '2026-12-02T10:00:00.123Z',
    });
  });

  it('maps account changes and API activity to their classes and activities', () => {
    const of = (action: string) => {
      const r = auditRecordToOcsf(row({ action }), 'v');
      return [r.class_uid, r.activity_id, r.api?.operation ?? null];
    };
    expect(of('auth.register')).toEqual([3001, 1, null]);
    expect(of('auth.password_changed')).toEqual([3001, 3, null]);
    expect(of('auth.lockout')).toEqual([3001, 9, null]);
    expect(of('auth.mfa.enable')).toEqual([3001, 10, null]);
    expect(of('admin.user.suspended')).toEqual([3001, 5, null]);
    expect(of('auth.logout')).toEqual([3002, 2, null]);
    expect(of('context.create')).toEqual([6003, 1, 'context.create']);
    expect(of('context.delete')).toEqual([6003, 4, 'context.delete']);
    expect(of('tool.execute')).toEqual([6003, 99, 'tool.execute']);
    // An action not (yet) in the mapping still exports, as API Activity / Other.
    expect(of('test.something_new')).toEqual([6003, 99, 'test.something_new']);
    expect(errorsOf(auditRecordToOcsf(row({ action: 'test.something_new' }), 'v'))).toEqual([]);
  });

  it('leaves out who and where when the record has none (system events)', () => {
    const record = auditRecordToOcsf(row({ action: 'tool.catalog.reconciled', user_id: null, ip_address: null, user_agent: null }), 'v');
    expect(record.actor).toBeUndefined();
    expect(record.src_endpoint).toBeUndefined();
    expect(record.http_request).toBeUndefined();
    expect(errorsOf(record)).toEqual([]);
  });

  it('is deterministic, so a redelivered record carries the same bytes', () => {
    const source = row();
    expect(JSON.stringify(auditRecordToOcsf(source, 'v'))).toBe(JSON.stringify(auditRecordToOcsf({ ...source }, 'v')));
  });

  it('exports a signed checkpoint as its own record type, verifiable with the public key', () => {
    const keys = new AuditKeyring(loadConfig({ AUDIT_HMAC_KEY: 'q8Vd2Lk9Zp4Wn7Rt1Yx6Bc3Hf5Jm0Gs8Ua2Ke', DATA_DIR: tmpdir() }));
    const unsigned = {
      format: AUDIT_CHECKPOINT_FORMAT,
      seq: 42,
      id: 'aud_42',
      hash: 'c'.repeat(64),
      createdAt: '2026-12-02T10:00:00.000Z',
      keyId: keys.keyId,
    };
    const checkpoint = { ...unsigned, signature: keys.sign(checkpointSigningPayload(unsigned)) };
    const record = checkpointToOcsf(checkpoint, 'v');
    expect(errorsOf(record)).toEqual([]);
    expect(record).toMatchObject({
      class_uid: 0,
      activity_id: 99,
      metadata: { uid: `checkpoint:42:${keys.keyId}`, sequence: 42, log_name: 'audit_checkpoints' },
    });
    const exported = (record.smcp as { checkpoint: typeof checkpoint }).checkpoint;
    expect(checkpointSignatureValid(exported, keys.publicKeyPem)).toBe(true);
    expect(checkpointSignatureValid({ ...exported, seq: 43 }, keys.publicKeyPem)).toBe(false);
  });

  it('has a schema that refuses what is not an export record', () => {
    const good = auditRecordToOcsf(row(), 'v');
    const without = (path: string[]): unknown => {
      const copy = structuredClone(good) as unknown as Record<string, Record<string, unknown>>;
      if (path.length === 1) delete (copy as Record<string, unknown>)[path[0]];
      else delete copy[path[0]][path[1]];
      return copy;
    };
    expect(errorsOf(without(['metadata', 'uid']))).not.toEqual([]);
    expect(errorsOf(without(['smcp', 'prev_hash']))).not.toEqual([]);
    expect(errorsOf(without(['unmapped']))).not.toEqual([]);
    expect(errorsOf({ ...good, class_uid: 0 })).not.toEqual([]);
    expect(errorsOf({ ...good, smcp: { ...good.smcp, hash: 'not-hex' } })).not.toEqual([]);
    expect(errorsOf({ ...good, surprise: true })).not.toEqual([]);
    const api = auditRecordToOcsf(row({ action: 'tool.execute' }), 'v');
    expect(errorsOf({ ...api, api: undefined })).not.toEqual([]);
  });
});

describe('audit export: retry backoff', () => {
  it('doubles from the base up to the cap, drawing in the upper half of each step', () => {
    const low = () => 0;
    const high = () => 1;
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 100, 1_000, low))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 100, 1_000, high))).toEqual([100, 200, 400, 800, 1_000]);
    expect(retryDelayMs(500, 100, 1_000, high)).toBe(1_000);
  });

  it('jitters: many draws for one step spread over its range', () => {
    const draws = new Set(Array.from({ length: 50 }, () => retryDelayMs(4, 100, 10_000)));
    expect(draws.size).toBeGreaterThan(10);
    for (const delay of draws) {
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });
});

describe('audit export: sinks', () => {
  const SECRET = 'sK4n8Qw2Zt6Lp0Vx3Rb7Ym1Hc5Jd9Gf2Ua8Ne';
  let server: Server;
  let url: string;
  let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  const signal = new AbortController().signal;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => answer(req, res, body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts a signed JSON batch; the receiver checks the HMAC over timestamp and body', async () => {
    const records = [auditRecordToOcsf(row(), 'v'), auditRecordToOcsf(row(), 'v')];
    let received: { header: string; body: string } | undefined;
    answer = (req, res, body) => {
      received = { header: String(req.headers[AUDIT_EXPORT_SIGNATURE_HEADER]), body };
      res.writeHead(202).end();
    };
    await new WebhookSink(url, SECRET, 5_000).deliver(records, signal);
    const parsed = JSON.parse(received!.body) as { format: string; records: ExportedRecord[] };
    expect(parsed.format).toBe('smcp-audit-export/1');
    expect(parsed.records.map((r) => r.metadata.uid)).toEqual(records.map((r) => r.metadata.uid));
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(received!.header)!;
    expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${received!.body}`).digest('hex'));
  });

  it('fails a batch the receiver refuses, does not follow redirects, and gives up on one that never answers', async () => {
    const records = [auditRecordToOcsf(row(), 'v')];
    answer = (_req, res) => res.writeHead(503).end();
    await expect(new WebhookSink(url, undefined, 5_000).deliver(records, signal)).rejects.toThrow('webhook answered HTTP 503');
    answer = (_req, res) => res.writeHead(307, { location: 'http://127.0.0.1:9/elsewhere' }).end();
    await expect(new WebhookSink(url, undefined, 5_000).deliver(records, signal)).rejects.toThrow('webhook answered HTTP 307');
    answer = () => undefined; // accepts, reads, never answers
    await expect(new WebhookSink(url, undefined, 200).deliver(records, signal)).rejects.toThrow('webhook did not answer within 200 ms');
  });

  it('appends JSON lines, batch after batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-export-'));
    try {
      const sink = new JsonLinesFileSink(join(dir, 'audit.jsonl'));
      const first = [auditRecordToOcsf(row(), 'v'), auditRecordToOcsf(row(), 'v')];
      const second = [auditRecordToOcsf(row(), 'v')];
      await sink.deliver(first);
      await sink.deliver(second);
      const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((line) => (JSON.parse(line) as ExportedRecord).metadata.uid)).toEqual(
        [...first, ...second].map((r) => r.metadata.uid),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
