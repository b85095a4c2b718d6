import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppException, Clock, newId } from '@app/core';
import { walkAuditChain } from './audit-chain.verifier';
import { AUDIT_CHECKPOINT_FORMAT, AuditCheckpoint, checkpointSigningPayload } from './audit-checkpoint';
import { AUDIT_RESULTS, AUDIT_SEVERITIES, AuditChainVerification, AuditEntry } from './audit-entry';
import { auditInsertRow, AuditRowContent, computeAuditMac } from './audit-hash';
import { AuditKeyring } from './audit-keyring';
import { auditInsertLinkedSql, auditLinkedInsertParams, AuditLogRepository, AuditStatements } from './audit-log.repository';
import { sanitizeAuditData, sanitizeAuditText } from './audit-sanitizer';

/** Records linked after the chain head, for a writer's own statement: see AuditService.linkedInsert. */
export interface LinkedAuditInsert {
  sql: string;
  params: unknown[];
  inserted(): void;
}

/**
 * The audit writer every module uses, and the chain verifier.
 *
 * Each record (or batch of records) costs one advisory lock and one INSERT (plus a SELECT of
 * the chain head when another writer moved it), all on the caller's transaction: the record
 * commits or rolls back with the change it describes. The SQL is AuditLogRepository's.
 */
@Injectable()
export class AuditService {
  /** The chain head as this process last wrote it: a guess, checked by every insert. */
  private head: string | undefined;

  constructor(
    private readonly rows: AuditLogRepository,
    private readonly clock: Clock,
    private readonly keys: AuditKeyring,
  ) {}

  /**
   * Appends a record inside the caller's transaction (READ COMMITTED, the default: a snapshot
   * taken before the lock would read a stale chain head and fork the chain, so other levels are
   * refused). Given a manager outside any transaction, it opens one of its own.
   */
  async record(manager: EntityManager, entry: AuditEntry): Promise<void> {
    await this.rows.inTransaction(manager, (transactional) => this.append(transactional, entry));
  }

  /**
   * Appends several records, chained in the given order, inside the caller's transaction (an
   * EntityManager in one, or the statements of one opened straight through pg: UnitOfWork.runSql;
   * given an EntityManager outside a transaction, in one of its own): one chain lock and one head
   * read for all of them, one INSERT. For writers that commit many changes together (the tool
   * pipeline's group commit). `chainLocked`: the caller's
   * transaction already took AUDIT_CHAIN_LOCK_SQL, in READ COMMITTED, in an earlier statement.
   */
  async recordMany(
    manager: EntityManager | AuditStatements,
    entries: AuditEntry[],
    options: { chainLocked?: boolean } = {},
  ): Promise<void> {
    if (entries.length === 0) return;
    // A transaction opened here (not the caller's) has taken no lock yet, whatever the caller says.
    await this.rows.inTransaction(manager, (transactional, callers) =>
      this.appendMany(transactional, entries, callers && options.chainLocked === true),
    );
  }

  /**
   * For a writer that inserts records in a statement of its own, beside its change (the tool
   * pipeline's group commit: one WITH query instead of two statements), in a READ COMMITTED
   * transaction that took AUDIT_CHAIN_LOCK_SQL in an earlier statement (so that statement's
   * snapshot sees every committed row): the records linked after the head this process last
   * wrote, as an INSERT (a WITH query's body, parameters from `$first` on) that inserts nothing
   * unless `condition` holds and that head is still the table's. The writer calls `inserted()`
   * once the statement inserted them; when it did not, it writes them with recordMany
   * (chainLocked). Null while this process knows no head (recordMany then reads it).
   */
  linkedInsert(entries: AuditEntry[], first: number, condition: string): LinkedAuditInsert | null {
    const expected = this.head;
    if (expected === undefined) return null;
    let prevHash = expected;
    const rows = entries.map((entry) => {
      const row = auditInsertRow(this.contentOf(entry), prevHash, this.keys.macKey);
      prevHash = row.hash;
      return row;
    });
    return {
      sql: auditInsertLinkedSql(first, condition),
      params: auditLinkedInsertParams(rows, expected),
      // Written, not yet committed: if the transaction rolls back, the next write's check catches it.
      inserted: () => (this.head = prevHash),
    };
  }

  /** Appends a record in a transaction of its own (events with no accompanying change, e.g. a failed login). */
  async recordStandalone(entry: AuditEntry): Promise<void> {
    await this.rows.inTransaction(undefined, (manager) => this.append(manager, entry));
  }

  /** Walks the chain oldest first, in batches, checking every hash, link and keyed MAC. */
  verifyChain(): Promise<AuditChainVerification> {
    return walkAuditChain((afterSeq, limit) => this.rows.rowsAfter(afterSeq, limit), {
      mac: (hash) => computeAuditMac(this.keys.macKey, hash),
    });
  }

  /**
   * A signed checkpoint of the chain head, for keeping outside the database. Only a chain that
   * verifies is signed: a checkpoint must never vouch for rows already rewritten.
   */
  async checkpoint(): Promise<AuditCheckpoint> {
    const verification = await this.verifyChain();
    if (!verification.valid) throw AppException.conflict('The audit chain does not verify: no checkpoint is signed', 'AUDIT_CHAIN_BROKEN');
    if (!verification.head) throw AppException.conflict('The audit chain is empty: there is no head to sign', 'AUDIT_CHAIN_EMPTY');
    const unsigned = {
      format: AUDIT_CHECKPOINT_FORMAT,
      ...verification.head,
      createdAt: this.clock.now().toISOString(),
      keyId: this.keys.keyId,
    };
    return { ...unsigned, signature: this.keys.sign(checkpointSigningPayload(unsigned)) };
  }

  /** The public key (SPKI PEM) that checks checkpoints offline, and its id. */
  get checkpointPublicKey(): string {
    return this.keys.publicKeyPem;
  }

  get checkpointKeyId(): string {
    return this.keys.keyId;
  }

  private async append(manager: AuditStatements, entry: AuditEntry): Promise<void> {
    await this.appendMany(manager, [entry], false);
  }

  /**
   * Links the rows to the chain head and inserts them. The head is usually the last hash this
   * process wrote: the INSERT checks it against the table (its snapshot is taken after the lock,
   * so it sees every committed row) and inserts nothing when another writer moved the head; then
   * the head is read and the rows are linked again. Saves a round trip per write under the lock.
   */
  private async appendMany(manager: AuditStatements, entries: AuditEntry[], chainLocked: boolean): Promise<void> {
    const contents = entries.map((entry) => this.contentOf(entry));
    if (!chainLocked) await this.rows.lockChain(manager);
    if (this.head !== undefined && (await this.insertLinked(manager, contents, this.head))) return;
    if (!(await this.insertLinked(manager, contents, await this.rows.headHash(manager)))) {
      throw new Error('The audit chain head moved while the chain lock was held');
    }
  }

  /** Inserts the rows chained after `prevHash` if that is still the head; false (nothing inserted) if not. */
  private async insertLinked(manager: AuditStatements, contents: AuditRowContent[], prevHash: string): Promise<boolean> {
    const expected = prevHash;
    const rows = contents.map((content) => {
      const row = auditInsertRow(content, prevHash, this.keys.macKey);
      prevHash = row.hash;
      return row;
    });
    if (!(await this.rows.insertLinked(manager, rows, expected))) {
      this.head = undefined;
      return false;
    }
    // Written, not yet committed: if the transaction rolls back, the next write's check catches it.
    this.head = prevHash;
    return true;
  }

  /** Validates and sanitises an entry into exactly what will be stored (and hashed). */
  private contentOf(entry: AuditEntry): AuditRowContent {
    if (typeof entry.action !== 'string' || !/^[^\u0000-\u001f\u007f]{1,128}$/.test(entry.action)) {
      throw new Error(`Invalid audit action: ${JSON.stringify(String(entry.action).slice(0, 140))}`);
    }
    if (!AUDIT_RESULTS.includes(entry.result)) throw new Error(`Invalid audit result for ${entry.action}`);
    if (!AUDIT_SEVERITIES.includes(entry.severity)) throw new Error(`Invalid audit severity for ${entry.action}`);
    // Postgres keeps microseconds, JS milliseconds: a millisecond instant round-trips exactly.
    const timestamp = new Date(Math.floor(this.clock.now().getTime())).toISOString();
    return {
      id: newId('aud'),
      timestamp,
      userId: sanitizeAuditText(entry.userId, 128),
      action: entry.action,
      resource: sanitizeAuditText(entry.resource, 512),
      details: sanitizeAuditData(entry.details),
      result: entry.result,
      ipAddress: sanitizeAuditText(entry.ipAddress, 64),
      userAgent: sanitizeAuditText(entry.userAgent, 512),
      severity: entry.severity,
      metadata: sanitizeAuditData(entry.metadata),
    };
  }
}
