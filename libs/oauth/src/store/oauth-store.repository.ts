import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/core';
import { returnedRows, Transaction } from '@app/database';
import { ClientSecretSeal } from './client-secret-seal';

/** An `oauth_store` row as the driver returns it (migration 1764950000000). */
interface OAuthStoreRow {
  model: string;
  id: string;
  payload: Record<string, unknown>;
  grant_id: string | null;
  uid: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
  created_at: Date;
}

/** Every column of `oauth_store`, in table order. */
export const OAUTH_STORE_TABLE_COLUMNS: ReadonlyArray<keyof OAuthStoreRow> = [
  'model',
  'id',
  'payload',
  'grant_id',
  'uid',
  'expires_at',
  'consumed_at',
  'created_at',
];

export interface StoredArtefact {
  payload: Record<string, unknown>;
  consumed: boolean;
}

/**
 * SQL of `oauth_store`: the provider library's artefacts by model and id. Expired rows read as
 * absent (the library's adapter contract) and are swept by `deleteExpired`.
 */
@Injectable()
export class OAuthStoreRepository {
  private readonly secrets: ClientSecretSeal;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.secrets = new ClientSecretSeal(config.secrets.encryptionKey);
  }

  async upsert(model: string, id: string, payload: Record<string, unknown>, expiresAt: Date | null, tx?: Transaction): Promise<void> {
    const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
    const uid = typeof payload.uid === 'string' ? payload.uid : null;
    await (tx ?? this.dataSource).query(
      `INSERT INTO oauth_store (model, id, payload, grant_id, uid, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
         expires_at = EXCLUDED.expires_at`,
      [model, id, JSON.stringify(this.sealed(model, id, payload)), grantId, uid, expiresAt],
    );
  }

  async find(model: string, id: string, now: Date): Promise<StoredArtefact | undefined> {
    const [row]: Array<Pick<OAuthStoreRow, 'payload' | 'consumed_at'>> = await this.dataSource.query(
      `SELECT payload, consumed_at FROM oauth_store WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3)`,
      [model, id, now],
    );
    return row ? { payload: this.opened(model, id, parsed(row.payload)), consumed: row.consumed_at !== null } : undefined;
  }

  async findByUid(model: string, uid: string, now: Date): Promise<StoredArtefact | undefined> {
    const [row]: Array<Pick<OAuthStoreRow, 'payload' | 'consumed_at'>> = await this.dataSource.query(
      `SELECT payload, consumed_at FROM oauth_store WHERE model = $1 AND uid = $2 AND (expires_at IS NULL OR expires_at > $3) LIMIT 1`,
      [model, uid, now],
    );
    return row ? { payload: parsed(row.payload), consumed: row.consumed_at !== null } : undefined;
  }

  /** Marks an artefact consumed (a used code, a rotated refresh token); false when it was consumed (or deleted) already. */
  async consume(model: string, id: string, now: Date, tx?: Transaction): Promise<boolean> {
    const rows = returnedRows(
      await (tx ?? this.dataSource).query(
        `UPDATE oauth_store SET consumed_at = $3 WHERE model = $1 AND id = $2 AND consumed_at IS NULL RETURNING id`,
        [model, id, now],
      ),
    );
    return rows.length === 1;
  }

  async destroy(model: string, id: string, tx?: Transaction): Promise<void> {
    await (tx ?? this.dataSource).query(`DELETE FROM oauth_store WHERE model = $1 AND id = $2`, [model, id]);
  }

  /** Every artefact of a grant (codes, refresh tokens: of any model when `model` is omitted). */
  async destroyByGrant(grantId: string, model?: string, tx?: Transaction): Promise<void> {
    if (model) await (tx ?? this.dataSource).query(`DELETE FROM oauth_store WHERE model = $1 AND grant_id = $2`, [model, grantId]);
    else await (tx ?? this.dataSource).query(`DELETE FROM oauth_store WHERE grant_id = $1 OR (model = 'Grant' AND id = $1)`, [grantId]);
  }

  /** Registered clients (model `Client`), newest first. */
  async listClients(): Promise<Array<Record<string, unknown>>> {
    const rows: Array<Pick<OAuthStoreRow, 'payload'>> = await this.dataSource.query(
      `SELECT payload FROM oauth_store WHERE model = 'Client' ORDER BY created_at DESC, id`,
    );
    return rows.map((row) => parsed(row.payload));
  }

  /** Inserts a client inside the caller's transaction (with its audit record); false when the id is taken. */
  async insertClient(tx: Transaction, id: string, payload: Record<string, unknown>): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(
        `INSERT INTO oauth_store (model, id, payload) VALUES ('Client', $1, $2) ON CONFLICT (model, id) DO NOTHING RETURNING id`,
        [id, JSON.stringify(this.sealed('Client', id, payload))],
      ),
    );
    return rows.length === 1;
  }

  async deleteClient(tx: Transaction, id: string): Promise<boolean> {
    const rows = returnedRows(await tx.query(`DELETE FROM oauth_store WHERE model = 'Client' AND id = $1 RETURNING id`, [id]));
    return rows.length === 1;
  }

  /** A client's secret is stored sealed (ClientSecretSeal), never in the clear. */
  private sealed(model: string, id: string, payload: Record<string, unknown>): Record<string, unknown> {
    return model === 'Client' ? this.secrets.seal(id, payload) : payload;
  }

  private opened(model: string, id: string, payload: Record<string, unknown>): Record<string, unknown> {
    return model === 'Client' ? this.secrets.open(id, payload) : payload;
  }

  async deleteExpired(now: Date): Promise<number> {
    const rows = returnedRows(await this.dataSource.query(`DELETE FROM oauth_store WHERE expires_at <= $1 RETURNING id`, [now]));
    return rows.length;
  }
}

/** jsonb comes back parsed from pg, as text from some drivers. */
function parsed(payload: unknown): Record<string, unknown> {
  return (typeof payload === 'string' ? JSON.parse(payload) : payload) as Record<string, unknown>;
}
