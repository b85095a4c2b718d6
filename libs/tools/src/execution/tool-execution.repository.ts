import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '@app/database';
import type { ExecutionError, ToolExecution } from './tool-execution';
import { EXECUTION_COLUMNS, executionOf, ToolExecutionRow } from './tool-execution.row';

/** How a finished call is written back. */
export interface ExecutionFinish {
  status: 'completed' | 'failed';
  /** Serialised, already bounded JSON (or null). */
  storedResult: string | null;
  error: ExecutionError | null;
  finishedAt: Date;
  durationMs: number;
}

/**
 * SQL of `tool_executions`. Writes that finish a call take the caller's transaction manager, so
 * the row, the session counters and the audit record commit together.
 */
@Injectable()
export class ToolExecutionRepository {
  /** This process's name in `locked_by`: a lease names who holds it. */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Inserts the row; when the caller already used its `requestId`, inserts nothing and returns
   * the earlier execution instead (`created: false`). Never two rows for one key, even racing.
   */
  async insert(
    execution: ToolExecution,
    stored: { input: string; payload: string | null },
    lockedUntil: Date | null,
  ): Promise<{ execution: ToolExecution; created: boolean }> {
    const rows = returnedRows<{ id: string }>(
      await this.dataSource.query(
        `INSERT INTO tool_executions (id, tool_id, user_id, session_id, request_id, request_hash, status, async, input,
           timeout_ms, ip_address, user_agent, created_at, started_at, attempts, locked_by, locked_until, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (user_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
         RETURNING id`,
        [
          execution.id,
          execution.toolId,
          execution.userId,
          execution.sessionId,
          execution.requestId,
          execution.requestHash,
          execution.status,
          execution.async,
          stored.input,
          execution.timeoutMs,
          execution.ipAddress,
          execution.userAgent,
          execution.createdAt,
          execution.startedAt,
          execution.attempts,
          lockedUntil ? this.workerId : null,
          lockedUntil,
          stored.payload,
        ],
      ),
    );
    if (rows.length > 0) return { execution, created: true };
    const earlier = await this.findByRequestId(execution.userId, execution.requestId!);
    if (!earlier) throw new Error('Idempotent insert found neither a new nor an earlier execution');
    return { execution: earlier, created: false };
  }

  async findById(id: string): Promise<ToolExecution | null> {
    const [row]: ToolExecutionRow[] = await this.dataSource.query(`SELECT ${EXECUTION_COLUMNS} FROM tool_executions WHERE id = $1`, [id]);
    return row ? executionOf(row) : null;
  }

  async findByRequestId(userId: string, requestId: string): Promise<ToolExecution | null> {
    const [row]: ToolExecutionRow[] = await this.dataSource.query(
      `SELECT ${EXECUTION_COLUMNS} FROM tool_executions WHERE user_id = $1 AND request_id = $2`,
      [userId, requestId],
    );
    return row ? executionOf(row) : null;
  }

  /**
   * Claims the oldest runnable async execution for this process: a pending one, or a running
   * one whose lease expired (its process died) while attempts remain. SKIP LOCKED lets every
   * replica poll at once without two of them taking the same row.
   */
  async claimNext(now: Date, leaseGraceMs: number, maxAttempts: number): Promise<ToolExecution | null> {
    const [row] = returnedRows<ToolExecutionRow & { payload: string | null }>(
      await this.dataSource.query(
        `UPDATE tool_executions
            SET status = 'running', attempts = attempts + 1, started_at = $1, locked_by = $2,
                locked_until = $1::timestamptz + (timeout_ms + $3) * interval '1 millisecond'
          WHERE id = (
            SELECT id FROM tool_executions
             WHERE async AND attempts < $4
               AND (status = 'pending' OR (status = 'running' AND locked_until < $1))
             ORDER BY created_at
             LIMIT 1
             FOR UPDATE SKIP LOCKED)
          RETURNING ${EXECUTION_COLUMNS}, payload`,
        [now, this.workerId, leaseGraceMs, maxAttempts],
      ),
    );
    if (!row) return null;
    // The exact parameters: what `input` keeps may be redacted or cut short.
    return { ...executionOf(row), input: row.payload === null ? row.input : JSON.parse(row.payload) };
  }

  /**
   * Writes the outcome. False when this process no longer holds the lease (it expired and
   * another process took the row over): then nothing is written.
   */
  async finish(manager: EntityManager, execution: ToolExecution, finish: ExecutionFinish): Promise<boolean> {
    const rows = returnedRows<{ id: string }>(
      await manager.query(
        `UPDATE tool_executions
            SET status = $3, result = $4::jsonb, error = $5::jsonb, finished_at = $6, duration_ms = $7,
                payload = NULL, locked_by = NULL, locked_until = NULL
          WHERE id = $1 AND status = 'running' AND locked_by = $2
          RETURNING id`,
        [
          execution.id,
          this.workerId,
          finish.status,
          finish.storedResult,
          finish.error ? JSON.stringify(finish.error) : null,
          finish.finishedAt,
          finish.durationMs,
        ],
      ),
    );
    return rows.length > 0;
  }

  /** Hands a claimed row back to the queue (this process is stopping before it could finish). */
  async release(execution: ToolExecution): Promise<void> {
    await this.dataSource.query(
      `UPDATE tool_executions SET status = 'pending', locked_by = NULL, locked_until = NULL
        WHERE id = $1 AND status = 'running' AND locked_by = $2`,
      [execution.id, this.workerId],
    );
  }

  /**
   * Fails, in the caller's transaction, executions that can no longer finish: synchronous ones
   * whose process died mid-call (the caller is gone; they are not retried) and async ones out
   * of attempts. Returns them so the caller can audit and count each.
   */
  async failAbandoned(
    manager: EntityManager,
    now: Date,
    maxAttempts: number,
    errors: { interrupted: ExecutionError; exhausted: ExecutionError },
    limit: number,
  ): Promise<ToolExecution[]> {
    const rows = returnedRows<ToolExecutionRow>(
      await manager.query(
        `UPDATE tool_executions
            SET status = 'failed', error = CASE WHEN async THEN $3::jsonb ELSE $4::jsonb END, finished_at = $1,
                duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE EXTRACT(EPOCH FROM ($1::timestamptz - started_at)) * 1000 END,
                payload = NULL, locked_by = NULL, locked_until = NULL
          WHERE id IN (
            SELECT id FROM tool_executions
             WHERE (status = 'running' AND locked_until < $1 AND (NOT async OR attempts >= $2))
                OR (status = 'pending' AND async AND attempts >= $2)
             ORDER BY created_at
             LIMIT $5
             FOR UPDATE SKIP LOCKED)
          RETURNING ${EXECUTION_COLUMNS}`,
        [now, maxAttempts, JSON.stringify(errors.exhausted), JSON.stringify(errors.interrupted), limit],
      ),
    );
    return rows.map(executionOf);
  }
}
