import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Transaction } from '@app/database';

/** An enterprise IdP identity (issuer + subject) and the account it signs in as. */
export interface IdentityLink {
  issuer: string;
  subject: string;
  userId: string;
  provider: string;
  /** The email the IdP last asserted (for the record; never used to find the link). */
  email: string | null;
  linkedAt: Date;
  lastSignInAt: Date | null;
}

/** An `identity_links` row as the driver returns it (migration 1764965000000). */
interface IdentityLinkRow {
  issuer: string;
  subject: string;
  user_id: string;
  provider: string;
  email: string | null;
  linked_at: Date;
  last_sign_in_at: Date | null;
}

/** Every column of `identity_links`, in table order. */
export const IDENTITY_LINK_TABLE_COLUMNS: ReadonlyArray<keyof IdentityLinkRow> = [
  'issuer',
  'subject',
  'user_id',
  'provider',
  'email',
  'linked_at',
  'last_sign_in_at',
];

const COLUMNS = IDENTITY_LINK_TABLE_COLUMNS.join(', ');

function fromRow(row: IdentityLinkRow): IdentityLink {
  return {
    issuer: row.issuer,
    subject: row.subject,
    userId: row.user_id,
    provider: row.provider,
    email: row.email,
    linkedAt: row.linked_at,
    lastSignInAt: row.last_sign_in_at,
  };
}

/** SQL of `identity_links`: lookups by (issuer, subject) and by account, inserts, sign-in times. */
@Injectable()
export class IdentityLinkRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async find(issuer: string, subject: string, tx?: Transaction): Promise<IdentityLink | null> {
    const rows: IdentityLinkRow[] = await (tx ?? this.dataSource).query(
      `SELECT ${COLUMNS} FROM identity_links WHERE issuer = $1 AND subject = $2`,
      [issuer, subject],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** The account's identity at this issuer, if it has one. */
  async findForUser(userId: string, issuer: string, tx?: Transaction): Promise<IdentityLink | null> {
    const rows: IdentityLinkRow[] = await (tx ?? this.dataSource).query(
      `SELECT ${COLUMNS} FROM identity_links WHERE user_id = $1 AND issuer = $2`,
      [userId, issuer],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Inserts a link; false when (issuer, subject) or (account, issuer) is already linked (a concurrent first sign-in). */
  async insert(tx: Transaction, link: Omit<IdentityLink, 'lastSignInAt'>): Promise<boolean> {
    const rows: unknown[] = await tx.query(
      `INSERT INTO identity_links (issuer, subject, user_id, provider, email, linked_at, last_sign_in_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT DO NOTHING RETURNING issuer`,
      [link.issuer, link.subject, link.userId, link.provider, link.email, link.linkedAt],
    );
    return rows.length === 1;
  }

  async recordSignIn(tx: Transaction, issuer: string, subject: string, email: string | null, now: Date): Promise<void> {
    await tx.query(`UPDATE identity_links SET last_sign_in_at = $3, email = $4 WHERE issuer = $1 AND subject = $2`, [
      issuer,
      subject,
      now,
      email,
    ]);
  }
}
