import type { DataSource } from 'typeorm';
import type { Clock } from '@app/core';
import { GENESIS_HASH } from './audit-hash';
import type { AuditKeyring } from './audit-keyring';
import { AuditLogRepository } from './audit-log.repository';
import { AuditService } from './audit.service';
import type { AuditEntry } from './audit-entry';

/**
 * AuditService.linkedInsert: the records a writer inserts in a statement of its own (the tool
 * pipeline's group commit, which builds it before its transaction holds the chain lock), linked
 * after the head this process expects. A wrong guess only makes the statement insert nothing (the
 * database checks the head); these tests pin which head is expected.
 */
describe('AuditService.linkedInsert', () => {
  const entry = (action: string): AuditEntry => ({ action, result: 'success', severity: 'info' });
  const tableHead = 'a'.repeat(64);

  function setup() {
    const service = new AuditService(
      new AuditLogRepository({} as DataSource),
      { now: () => new Date('2026-01-01T00:00:00Z') } as Clock,
      { macKey: Buffer.alloc(32, 7) } as AuditKeyring,
    );
    /** A transaction of the caller's (raw statements) in which the head is `tableHead` and every linked insert goes in. */
    const statements = {
      query: jest.fn(async (sql: string, _params?: unknown[]): Promise<any> =>
        sql.startsWith('SELECT hash FROM audit_logs') ? [{ hash: tableHead }] : [{ seq: '1' }],
      ),
    };
    return { service, statements };
  }

  /** What a linked insert's parameters say: the head it expects, and the hashes of its records in order (each linked to the one before). */
  function linkedAfter(params: string[]): { expected: string; hashes: string[] } {
    const [rows, expected, genesis] = params;
    expect(genesis).toBe(GENESIS_HASH);
    const parsed = JSON.parse(rows) as Array<{ prev_hash: string; hash: string }>;
    parsed.forEach((row, i) => expect(row.prev_hash).toBe(i === 0 ? expected : parsed[i - 1].hash));
    return { expected, hashes: parsed.map((row) => row.hash) };
  }

  it('gives nothing while this process knows no head (the writer uses recordMany, which reads it)', () => {
    const { service } = setup();
    expect(service.linkedInsert([entry('test.one')], 2, 'true')).toBeNull();
  });

  it('links after the head this process wrote last, numbering its parameters from `first`, under the condition given', async () => {
    const { service, statements } = setup();
    await service.recordMany(statements, [entry('test.first')], { chainLocked: true });
    const written = linkedAfter(statements.query.mock.calls[1][1] as string[]);
    expect(written.expected).toBe(tableHead);

    const linked = service.linkedInsert([entry('test.a'), entry('test.b')], 5, '(SELECT count(*) FROM ex) = 2')!;
    expect(linked.sql).toContain('json_to_recordset($5::json)');
    expect(linked.sql).toContain('$7) = $6');
    expect(linked.sql).toContain('AND (SELECT count(*) FROM ex) = 2');
    const { expected, hashes } = linkedAfter(linked.params);
    expect(expected).toBe(written.hashes[0]);
    expect(hashes).toHaveLength(2);
  });

  it('links a statement built while an earlier one is on its way after that one, and forgets a guess that did not go in', async () => {
    const { service, statements } = setup();
    await service.recordMany(statements, [entry('test.first')], { chainLocked: true });
    const first = service.linkedInsert([entry('test.a')], 2, 'true')!;
    const second = service.linkedInsert([entry('test.b')], 2, 'true')!;
    const [a, b] = [linkedAfter(first.params), linkedAfter(second.params)];
    expect(b.expected).toBe(a.hashes[0]);

    // The first went in, the second not (another writer came between): no head is known any more.
    first.settled(true);
    second.settled(false);
    expect(service.linkedInsert([entry('test.c')], 2, 'true')).toBeNull();
  });

  it("keeps a later statement's guess when an earlier one did not go in", async () => {
    const { service, statements } = setup();
    await service.recordMany(statements, [entry('test.first')], { chainLocked: true });
    const first = service.linkedInsert([entry('test.a')], 2, 'true')!;
    const second = service.linkedInsert([entry('test.b')], 2, 'true')!;
    first.settled(false);
    const third = service.linkedInsert([entry('test.c')], 2, 'true')!;
    expect(linkedAfter(third.params).expected).toBe(linkedAfter(second.params).hashes[0]);
  });
});
