import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { returnedRows, Transaction } from '@app/database';

/** An `oauth_grants` row as the driver returns it (migration 1764950000000). */
interface OAuthGrantRow {
  grant_id: string;
  user_id: string;
  client_id: string;
  client_name: string | null;
  session_id: string;
  scopes: string[];
  resources: string[];
  created_at: Date;
  updated_at: Date;
  revoked_at: Date | null;
}

/** Every column of `oauth_grants`, in table order. */
export const OAUTH_GRANT_TABLE_COLUMNS: ReadonlyArray<keyof OAuthGrantRow> = [
  'grant_id',
  'user_id',
  'client_id',
  'client_name',
  'session_id',
  'scopes',
  'resources',
  'created_at',
  'updated_at',
  'revoked_at',
];

export interface OAuthGrantRecord {
  grantId: string;
  userId: string;
  clientId: string;
  clientName: string | null;
  sessionId: string;
  scopes: string[];
  resources: string[];
  createdAt: Date;
  updatedAt: Date;
  revokedAt: Date | null;
  /** The gateway session's status ('active' or 'terminated'). */
  sessionStatus: string;
}

/** A grant to insert: the record's own fields, stamped `now`. */
export type NewOAuthGrant = Omit<OAuthGrantRecord, 'createdAt' | 'updatedAt' | 'revokedAt' | 'sessionStatus'> & { now: Date };

const SELECT = `SELECT g.*, s.status AS session_status FROM oauth_grants g JOIN sessions s ON s.id = g.session_id`;

/** SQL of `oauth_grants`: the consents users gave, each with its gateway session. */
@Injectable()
export class OAuthGrantRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(tx: Transaction, grant: NewOAuthGrant): Promise<void> {
    await tx.query(
      `INSERT INTO oauth_grants (grant_id, user_id, client_id, client_name, session_id, scopes, resources, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
      [grant.grantId, grant.userId, grant.clientId, grant.clientName, grant.sessionId, grant.scopes, grant.resources, grant.now],
    );
  }

  /** Widens a remembered grant with what the user consented to now. */
  async widen(tx: Transaction, grantId: string, scopes: string[], resources: string[], now: Date): Promise<void> {
    await tx.query(`UPDATE oauth_grants SET scopes = $2, resources = $3, updated_at = $4 WHERE grant_id = $1`, [
      grantId,
      scopes,
      resources,
      now,
    ]);
  }

  async find(grantId: string, tx?: Transaction): Promise<OAuthGrantRecord | null> {
    const [row] = await (tx ?? this.dataSource).query(`${SELECT} WHERE g.grant_id = $1`, [grantId]);
    return row ? recordOf(row) : null;
  }

  /** The user's unrevoked grant for a client whose session is still active, newest first. */
  async findRemembered(userId: string, clientId: string): Promise<OAuthGrantRecord | null> {
    const [row] = await this.dataSource.query(
      `${SELECT} WHERE g.user_id = $1 AND g.client_id = $2 AND g.revoked_at IS NULL AND s.status = 'active'
       ORDER BY g.updated_at DESC LIMIT 1`,
      [userId, clientId],
    );
    return row ? recordOf(row) : null;
  }

  async listForUser(userId: string): Promise<OAuthGrantRecord[]> {
    const rows: unknown[] = await this.dataSource.query(`${SELECT} WHERE g.user_id = $1 ORDER BY g.created_at DESC, g.grant_id`, [userId]);
    return rows.map((row) => recordOf(row as OAuthGrantRow & { session_status: string }));
  }

  /** Marks the grant revoked; true when this call did (it was not revoked before). */
  async markRevoked(tx: Transaction, grantId: string, now: Date): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(`UPDATE oauth_grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL RETURNING grant_id`, [
        grantId,
        now,
      ]),
    );
    return rows.length === 1;
  }
}

function recordOf(row: OAuthGrantRow & { session_status: string }): OAuthGrantRecord {
  return {
    grantId: row.grant_id,
    userId: row.user_id,
    clientId: row.client_id,
    clientName: row.client_name,
    sessionId: row.session_id,
    scopes: [...row.scopes],
    resources: [...row.resources],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
    sessionStatus: row.session_status,
  };
}
