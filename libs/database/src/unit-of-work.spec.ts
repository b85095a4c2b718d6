import { escapeLiteral } from 'pg';
import type { PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import { TRACED_QUERY_TEXT } from '@app/telemetry';
import { inlinedSql, SqlTransaction } from './unit-of-work';

/** Statements sent with BEGIN over pg's simple protocol: their values become literals, quoted by pg's own escapeLiteral. */
describe('inlinedSql', () => {
  it('leaves SQL without values as it is', () => {
    expect(inlinedSql(`SELECT pg_advisory_xact_lock(42) AS locked`)).toBe(`SELECT pg_advisory_xact_lock(42) AS locked`);
  });

  it("writes each placeholder's value as pg's escapeLiteral quotes it, $10 apart from $1, NULL as NULL", () => {
    const values = ['plain', `it's`, 'back\\slash and "quotes"', 'é 漢字 😀\nnewline', null, '6', '7', '8', '9', 'ten'];
    const sql = inlinedSql({ sql: 'SELECT $1::json, $2, $3, $4, $5, $10, $1', params: values });
    expect(sql).toBe(
      `SELECT ${escapeLiteral('plain')}::json, ${escapeLiteral(`it's`)}, ${escapeLiteral('back\\slash and "quotes"')}, ` +
        `${escapeLiteral('é 漢字 😀\nnewline')}, NULL, ${escapeLiteral('ten')}, ${escapeLiteral('plain')}`,
    );
    // What that is: quotes doubled, and a backslash doubled inside an E'' literal.
    expect(sql).toContain(`'it''s'`);
    expect(sql).toContain(` E'back\\\\slash and "quotes"'`);
  });

  it('refuses what escapeLiteral would quietly get wrong: a missing value, a value that is not text, a NUL (it would end the query text)', () => {
    expect(() => inlinedSql({ sql: 'SELECT $1, $2', params: ['one'] })).toThrow('No value for placeholder $2');
    expect(() => inlinedSql({ sql: 'SELECT $1', params: [42 as unknown as string] })).toThrow('The value of $1 is not text');
    expect(() => inlinedSql({ sql: 'SELECT $1', params: ['a\u0000b'] })).toThrow('The value of $1 contains a NUL character');
  });
});

describe('SqlTransaction.queryAll', () => {
  it('sends the statements as one query text without parameters, a trace given their parameterised SQL, and answers each one its rows', async () => {
    const query = jest.fn(async (_config: unknown, _values?: unknown) => [
      { rows: [] },
      { rows: [{ locked: '' }] },
      { rows: [{ id: 'x' }, { id: 'y' }] },
    ]);
    const tx = new SqlTransaction({ query } as unknown as PoolClient, { options: {}, logger: {} } as unknown as DataSource);
    const rows = await tx.queryAll([
      'BEGIN',
      'SELECT pg_advisory_xact_lock(1) AS locked',
      { sql: 'SELECT $1::text AS id', params: [`it's`] },
    ]);
    expect(rows).toEqual([[], [{ locked: '' }], [{ id: 'x' }, { id: 'y' }]]);
    expect(query).toHaveBeenCalledTimes(1);
    const [config, values] = query.mock.calls[0];
    expect(values).toBeUndefined();
    expect(config).toEqual({
      text: `BEGIN;\nSELECT pg_advisory_xact_lock(1) AS locked;\nSELECT ${escapeLiteral(`it's`)}::text AS id`,
      [TRACED_QUERY_TEXT]: 'BEGIN;\nSELECT pg_advisory_xact_lock(1) AS locked;\nSELECT $1::text AS id',
    });
  });
});
