import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ContextStatus = 'active' | 'archived';
export const CONTEXT_STATUSES: readonly ContextStatus[] = ['active', 'archived'];

/** A user's named workspace: a set of catalogue tools with settings and free-form metadata. */
@Entity('contexts')
export class ContextEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  @Column({ name: 'user_id', type: 'text' }) userId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', default: '' }) description: string;
  @Column({ type: 'text', default: 'active' }) status: ContextStatus;
  @Column({ type: 'jsonb', default: {} }) metadata: Record<string, unknown>;
  @Column({ type: 'text', array: true, default: '{}' }) tools: string[];
  @Column({ type: 'jsonb', default: {} }) settings: Record<string, unknown>;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

/** Columns in the order `contextOf` reads them. */
export const CONTEXT_COLUMNS = 'id, user_id, name, description, status, metadata, tools, settings, created_at, updated_at';

export interface ContextRow {
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

export function contextOf(row: ContextRow): ContextEntity {
  return Object.assign(new ContextEntity(), {
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
  });
}
