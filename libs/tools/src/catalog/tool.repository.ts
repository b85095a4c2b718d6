import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '@app/database';
import type { JsonSchema, ToolAnnotations, ToolCategory, ToolDefinition } from '../provider/tool-provider';
import { CatalogTool, RateLimit, ToolOverrides, windowMsOf } from './catalog-tool';

/** A `tools` row as the driver returns it. */
export interface ToolRow {
  id: string;
  name: string;
  description: string;
  version: string;
  category: ToolCategory;
  enabled: boolean;
  input_schema: JsonSchema;
  output_schema: JsonSchema;
  permissions: string[];
  rate_limit_requests: number;
  rate_limit_window: string;
  provider: string;
  annotations: ToolAnnotations;
  definition: ToolDefinition;
  definition_hash: string;
  overrides: ToolOverrides;
  available: boolean;
  created_at: Date;
  updated_at: Date;
  updated_by: string | null;
}

/** Every column of `tools`, in the order rows are read. */
export const TOOLS_COLUMNS = [
  'id',
  'name',
  'description',
  'version',
  'category',
  'enabled',
  'input_schema',
  'output_schema',
  'permissions',
  'rate_limit_requests',
  'rate_limit_window',
  'provider',
  'annotations',
  'definition',
  'definition_hash',
  'overrides',
  'available',
  'created_at',
  'updated_at',
  'updated_by',
] as const;

const SELECTED = TOOLS_COLUMNS.join(', ');

/** Serialises reconciliations across replicas (arbitrary constant, unique to this purpose). */
const RECONCILE_LOCK_KEY = '5830172946617205531';

function catalogToolOf(row: ToolRow): CatalogTool {
  const rateLimit = { requests: row.rate_limit_requests, window: row.rate_limit_window };
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    category: row.category,
    enabled: row.enabled,
    available: row.available,
    inputSchema: row.input_schema,
    outputSchema: row.output_schema,
    permissions: [...row.permissions],
    rateLimit,
    rateWindowMs: windowMsOf(rateLimit),
    provider: row.provider,
    annotations: row.annotations ?? {},
    definition: row.definition,
    definitionHash: row.definition_hash,
    overrides: row.overrides ?? {},
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** The fields of a tool an administrator's overrides decide (see effectiveSettings). */
export interface ToolSettings {
  enabled: boolean;
  permissions: string[];
  rateLimit: RateLimit;
}

/** A provider's definition as the catalogue stores it. */
export interface ToolDefinitionWrite {
  definition: ToolDefinition;
  provider: string;
  hash: string;
  settings: ToolSettings;
  now: Date;
}

/**
 * The one home of `tools` SQL. Writes take the caller's transaction manager (from
 * `transaction`), so a change commits together with its audit record.
 */
@Injectable()
export class ToolRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Takes the reconciliation lock until the manager's transaction ends: one replica reconciles at a time. */
  async lockForReconcile(manager: EntityManager): Promise<void> {
    await manager.query(`SELECT pg_advisory_xact_lock($1)`, [RECONCILE_LOCK_KEY]);
  }

  /** Every tool, available or not, by id. */
  async all(manager: EntityManager = this.dataSource.manager): Promise<CatalogTool[]> {
    const rows: ToolRow[] = await manager.query(`SELECT ${SELECTED} FROM tools ORDER BY id`);
    return rows.map(catalogToolOf);
  }

  /** The tool, its row locked until the manager's transaction ends; null when there is none. */
  async findForUpdate(manager: EntityManager, id: string): Promise<CatalogTool | null> {
    const [row]: ToolRow[] = await manager.query(`SELECT ${SELECTED} FROM tools WHERE id = $1 FOR UPDATE`, [id]);
    return row ? catalogToolOf(row) : null;
  }

  /** A new tool (`insert`), or a known one's definition written again and made available (`update`). */
  async writeDefinition(manager: EntityManager, mode: 'insert' | 'update', write: ToolDefinitionWrite): Promise<void> {
    const { definition, settings } = write;
    const values = [
      definition.id,
      definition.name,
      definition.description ?? '',
      definition.version,
      definition.category,
      settings.enabled,
      JSON.stringify(definition.inputSchema),
      JSON.stringify(definition.outputSchema),
      settings.permissions,
      settings.rateLimit.requests,
      settings.rateLimit.window,
      write.provider,
      JSON.stringify(definition.annotations ?? {}),
      JSON.stringify(definition),
      write.hash,
      write.now,
    ];
    if (mode === 'insert') {
      await manager.query(
        `INSERT INTO tools (id, name, description, version, category, enabled, input_schema, output_schema, permissions,
           rate_limit_requests, rate_limit_window, provider, annotations, definition, definition_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15, $16, $16)`,
        values,
      );
    } else {
      await manager.query(
        `UPDATE tools SET name = $2, description = $3, version = $4, category = $5, enabled = $6, input_schema = $7::jsonb,
           output_schema = $8::jsonb, permissions = $9, rate_limit_requests = $10, rate_limit_window = $11, provider = $12,
           annotations = $13::jsonb, definition = $14::jsonb, definition_hash = $15, available = true, updated_at = $16
         WHERE id = $1`,
        values,
      );
    }
  }

  async markUnavailable(manager: EntityManager, id: string, now: Date): Promise<void> {
    await manager.query(`UPDATE tools SET available = false, updated_at = $2 WHERE id = $1`, [id, now]);
  }

  /** An administrator's overrides and the effective settings they give; answers the tool as saved. */
  async saveSettings(
    manager: EntityManager,
    id: string,
    settings: ToolSettings,
    overrides: ToolOverrides,
    change: { at: Date; by: string },
  ): Promise<CatalogTool> {
    const [saved] = returnedRows<ToolRow>(
      await manager.query(
        `UPDATE tools SET enabled = $2, permissions = $3, rate_limit_requests = $4, rate_limit_window = $5,
           overrides = $6::jsonb, updated_at = $7, updated_by = $8
         WHERE id = $1 RETURNING ${SELECTED}`,
        [
          id,
          settings.enabled,
          settings.permissions,
          settings.rateLimit.requests,
          settings.rateLimit.window,
          JSON.stringify(overrides),
          change.at,
          change.by,
        ],
      ),
    );
    return catalogToolOf(saved);
  }
}
