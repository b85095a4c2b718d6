import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '@app/database';
import type { Context, ContextStatus } from './context';
import type { ContextSort } from './dto/list-contexts-query.dto';

/** A `contexts` row as the driver returns it. */
interface ContextRow {
  id: string;
  user_id: string;
  name: string;
  description: string;
  status: ContextStatus;
  metadata: Record<string, unknown>;
  tools: string[];
  settings: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

/** Every column of `contexts`, in the order `contextOf` reads them. */
export const CONTEXTS_COLUMNS = [
  'id',
  'user_id',
  'name',
  'description',
  'status',
  'metadata',
  'tools',
  'settings',
  'created_at',
  'updated_at',
] as const;

const SELECTED = CONTEXTS_COLUMNS.join(', ');

function contextOf(row: ContextRow): Context {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    description: row.description,
    status: row.status,
    metadata: row.metadata ?? {},
    tools: row.tools ?? [],
    settings: row.settings ?? {},
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** What an update may change; absent fields stay as they are. */
export interface ContextChanges {
  name?: string;
  description?: string;
  metadata?: Record<string, unknown>;
  tools?: string[];
  settings?: Record<string, unknown>;
  status?: ContextStatus;
}

export interface ContextListFilter {
  userId?: string;
  status?: ContextStatus;
}

export interface ContextPageRequest {
  sort: ContextSort;
  direction: 'asc' | 'desc';
  limit: number;
  offset: number;
}

const SORT_COLUMNS: Record<ContextSort, readonly string[]> = {
  created: ['created_at'],
  updated: ['updated_at'],
  // Byte order after folding case: the same on every server, whatever its default collation.
  name: ['lower(name) COLLATE "C"', 'name COLLATE "C"'],
};

/** The columns an update may set (never taken from the caller's object keys). */
const CHANGEABLE = ['name', 'description', 'metadata', 'tools', 'settings', 'status'] as const satisfies ReadonlyArray<
  keyof ContextChanges
>;
const JSON_FIELDS: ReadonlySet<keyof ContextChanges> = new Set(['metadata', 'settings']);

/**
 * The one home of `contexts` SQL. Writes take the caller's transaction manager (from
 * `transaction`), so a change commits together with its audit record.
 */
@Injectable()
export class ContextRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(manager: EntityManager, context: Context): Promise<Context> {
    const [row] = returnedRows<ContextRow>(
      await manager.query(
        `INSERT INTO contexts (${SELECTED})
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10)
         RETURNING ${SELECTED}`,
        [
          context.id,
          context.userId,
          context.name,
          context.description,
          context.status,
          JSON.stringify(context.metadata),
          context.tools,
          JSON.stringify(context.settings),
          context.createdAt,
          context.updatedAt,
        ],
      ),
    );
    return contextOf(row);
  }

  /** The context, or null. `forUpdate` locks the row until the manager's transaction ends. */
  async findById(id: string, manager: EntityManager = this.dataSource.manager, forUpdate = false): Promise<Context | null> {
    const [row]: ContextRow[] = await manager.query(`SELECT ${SELECTED} FROM contexts WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
      id,
    ]);
    return row ? contextOf(row) : null;
  }

  /** One page of the matching contexts in the given order (ties broken by id), and how many match in all. */
  async page(filter: ContextListFilter, request: ContextPageRequest): Promise<{ contexts: Context[]; total: number }> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (filter.userId !== undefined) {
      params.push(filter.userId);
      where.push(`user_id = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`status = $${params.length}`);
    }
    const matching = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const direction = request.direction === 'asc' ? 'ASC' : 'DESC';
    const orderBy = [...SORT_COLUMNS[request.sort], 'id'].map((column) => `${column} ${direction}`).join(', ');

    const [{ total }]: Array<{ total: number }> = await this.dataSource.query(
      `SELECT count(*)::int AS total FROM contexts ${matching}`,
      params,
    );
    const rows: ContextRow[] = await this.dataSource.query(
      `SELECT ${SELECTED} FROM contexts ${matching} ORDER BY ${orderBy} LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, request.limit, request.offset],
    );
    return { contexts: rows.map(contextOf), total: Number(total) };
  }

  /** Sets the given fields and `updated_at`; answers the row as saved. */
  async update(manager: EntityManager, id: string, changes: ContextChanges, updatedAt: Date): Promise<Context> {
    const params: unknown[] = [id, updatedAt];
    const sets = ['updated_at = $2'];
    for (const field of CHANGEABLE) {
      const value = changes[field];
      if (value === undefined) continue;
      const json = JSON_FIELDS.has(field);
      params.push(json ? JSON.stringify(value) : value);
      sets.push(`${field} = $${params.length}${json ? '::jsonb' : ''}`);
    }
    const [row] = returnedRows<ContextRow>(
      await manager.query(`UPDATE contexts SET ${sets.join(', ')} WHERE id = $1 RETURNING ${SELECTED}`, params),
    );
    return contextOf(row);
  }

  async delete(manager: EntityManager, id: string): Promise<void> {
    await manager.query(`DELETE FROM contexts WHERE id = $1`, [id]);
  }
}
