import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Counter, Gauge } from 'prom-client';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs, Clock, safeErrorMessage } from '@app/core';
import { AUDIT_CHECKPOINT_FORMAT, AuditCheckpoint, checkpointSigningPayload } from '../audit-checkpoint';
import { computeAuditHash, computeAuditMac } from '../audit-hash';
import { AuditKeyring } from '../audit-keyring';
import { AuditLogRepository, AuditLogRow, auditRowContent } from '../audit-log.repository';
import { AuditExportCursor, AuditExportCursorRepository } from './audit-export-cursor.repository';
import {
  AUDIT_EXPORT_DELIVERED_METRIC,
  AUDIT_EXPORT_FAILURES_METRIC,
  AUDIT_EXPORT_LAG_METRIC,
  AUDIT_EXPORT_LAST_DELIVERED_METRIC,
} from './audit-export.metrics';
import { auditRecordToOcsf, checkpointToOcsf } from './audit-export.record';
import { AuditExportSink, JsonLinesFileSink, retryDelayMs, WebhookSink } from './audit-export.sinks';

/** Batches one run delivers at most before yielding (the next tick continues). */
const MAX_BATCHES_PER_RUN = 20;

/** What GET /admin/health shows of a sink (metrics.auditExport). */
export interface AuditExportStatus {
  sink: string;
  /** Committed records after the sink's cursor (null until first read). */
  lagRecords: number | null;
  /** seq of the last record the sink confirmed (0: none yet). */
  cursorSeq: number;
  lastDeliveredAt: string | null;
  /** True while this process holds the sink's lease (exports to it); other replicas stand by. */
  exporting: boolean;
  /** Failed deliveries in a row (0: the last one succeeded); the next attempt waits a backoff. */
  consecutiveFailures: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Why no checkpoint was signed over the last batch (the exported rows did not verify), if so. */
  chainError: string | null;
}

interface SinkState {
  sink: AuditExportSink;
  job?: BackgroundJob;
  running?: Promise<void>;
  ensured: boolean;
  status: AuditExportStatus;
  nextAttemptAtMs: number;
  lastCheckpointAtMs: number;
}

/**
 * Streams committed audit records to the configured sinks, in `seq` order, at least once.
 *
 * Each sink has a durable cursor (audit_export_cursors): a background job reads the records after
 * it, delivers them as one batch, and only then advances it, so a crash between delivery and
 * advance re-sends that batch (receivers deduplicate on metadata.uid) and a restart resumes where
 * the cursor stands. `seq` is assigned under the chain lock, held until commit, so no record with
 * a smaller seq can become visible after a larger one was read: reading `seq > cursor` misses none.
 *
 * One replica exports to a sink at a time, by a lease on the cursor row (see
 * AuditExportCursorRepository) rather than an advisory lock or a row lock held by an open
 * transaction: both would pin a database connection across a network delivery that may hang for
 * the whole timeout, and the embedded database has a single connection that every request needs.
 *
 * Requests never wait on this: it runs off the request path, reads from the database (nothing is
 * queued in memory) and a failing sink only delays its own next attempt (exponential backoff with
 * jitter).
 */
@Injectable()
export class AuditExporter implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(AuditExporter.name);
  private readonly settings: AppConfig['auditExport'];
  private readonly version: string;
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly leaseMs: number;
  private readonly states: SinkState[] = [];
  private readonly shutdown = new AbortController();
  private closing = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly cursors: AuditExportCursorRepository,
    private readonly rows: AuditLogRepository,
    private readonly keys: AuditKeyring,
    private readonly clock: Clock,
    private readonly jobs: BackgroundJobs,
    @InjectMetric(AUDIT_EXPORT_LAG_METRIC) private readonly lagGauge: Gauge<string>,
    @InjectMetric(AUDIT_EXPORT_DELIVERED_METRIC) private readonly deliveredCounter: Counter<string>,
    @InjectMetric(AUDIT_EXPORT_FAILURES_METRIC) private readonly failuresCounter: Counter<string>,
    @InjectMetric(AUDIT_EXPORT_LAST_DELIVERED_METRIC) private readonly lastDeliveredGauge: Gauge<string>,
  ) {
    this.settings = config.auditExport;
    this.version = config.version;
    // Outlasts one delivery (the webhook timeout) plus the database round trips around it.
    this.leaseMs = 2 * this.settings.webhookTimeoutMs + 10_000;
    const sinks: AuditExportSink[] = [];
    if (this.settings.webhookUrl)
      sinks.push(new WebhookSink(this.settings.webhookUrl, this.settings.webhookSecret, this.settings.webhookTimeoutMs));
    if (this.settings.file) sinks.push(new JsonLinesFileSink(this.settings.file));
    for (const sink of sinks) this.states.push(this.stateOf(sink));
  }

  onApplicationBootstrap(): void {
    for (const state of this.states) {
      this.lagGauge.set({ sink: state.sink.name }, 0);
      state.job = this.jobs.every(`audit.export.${state.sink.name}`, this.settings.intervalMs, () => this.tick(state));
    }
    if (this.states.length > 0) this.logger.log(`Audit export to ${this.states.map((s) => s.sink.name).join(', ')}`);
  }

  /** Stops exporting: aborts a delivery in flight (it is re-sent by whoever resumes) and gives the leases up. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.shutdown.abort();
    for (const state of this.states) state.job?.stop();
    await Promise.all(this.states.map((state) => (state.running ?? Promise.resolve()).catch(() => undefined)));
    await Promise.all(
      this.states
        .filter((state) => state.status.exporting)
        .map((state) => this.cursors.release(state.sink.name, this.owner).catch(() => undefined)),
    );
  }

  /** Per sink: position, lag, last delivery and last error. */
  status(): AuditExportStatus[] {
    return this.states.map((state) => ({ ...state.status }));
  }

  /** Runs every sink's job once, now (what the jobs do on their ticks). */
  async exportOnce(): Promise<void> {
    await Promise.all(this.states.map((state) => this.tick(state)));
  }

  /** One run of a sink's job (the job never runs it twice at once). */
  private tick(state: SinkState): Promise<void> {
    if (this.closing) return Promise.resolve();
    state.running = this.run(state).finally(() => (state.running = undefined));
    return state.running;
  }

  private stateOf(sink: AuditExportSink): SinkState {
    return {
      sink,
      ensured: false,
      nextAttemptAtMs: 0,
      lastCheckpointAtMs: 0,
      status: {
        sink: sink.name,
        lagRecords: null,
        cursorSeq: 0,
        lastDeliveredAt: null,
        exporting: false,
        consecutiveFailures: 0,
        nextAttemptAt: null,
        lastError: null,
        lastErrorAt: null,
        chainError: null,
      },
    };
  }

  private async run(state: SinkState): Promise<void> {
    const name = state.sink.name;
    if (!state.ensured) {
      await this.cursors.ensure(name);
      state.ensured = true;
    }
    if (this.clock.nowMs() < state.nextAttemptAtMs) return this.refreshLag(state);
    const claimed = await this.cursors.claim(name, this.owner, this.leaseMs);
    state.status.exporting = claimed !== undefined;
    let position = claimed ?? (await this.cursors.read(name));
    if (position) this.observe(state, position);
    for (let batch = 0; claimed && position && batch < MAX_BATCHES_PER_RUN && !this.closing; batch++) {
      const rows = await this.rows.rowsAfter(position.lastSeq, this.settings.batchSize);
      if (rows.length === 0) break;
      const records = rows.map((row) => auditRecordToOcsf(row, this.version));
      const checkpoint = this.checkpointOver(state, position, rows);
      if (checkpoint) records.push(checkpointToOcsf(checkpoint, this.version));
      try {
        await state.sink.deliver(records, this.shutdown.signal);
      } catch (error) {
        this.failed(state, error);
        break;
      }
      const last = rows[rows.length - 1];
      const to = { seq: last.seq, id: last.id, hash: last.hash, count: records.length };
      this.deliveredCounter.inc({ sink: name }, records.length);
      state.status.consecutiveFailures = 0;
      state.status.nextAttemptAt = null;
      if (checkpoint) state.lastCheckpointAtMs = this.clock.nowMs();
      if (!(await this.cursors.advance(name, this.owner, position.lastSeq, to, this.leaseMs))) {
        // Another process took the sink over (our lease expired): it re-sends from the cursor.
        state.status.exporting = false;
        break;
      }
      position = {
        ...position,
        lastSeq: last.seq,
        lastId: last.id,
        lastHash: last.hash,
        deliveredCount: position.deliveredCount + records.length,
        lastDeliveredAt: this.clock.now(),
      };
      this.observe(state, position);
      if (rows.length < this.settings.batchSize) break;
    }
    await this.refreshLag(state);
  }

  private failed(state: SinkState, error: unknown): void {
    const status = state.status;
    status.consecutiveFailures += 1;
    status.lastError = safeErrorMessage(error);
    status.lastErrorAt = this.clock.now().toISOString();
    const delay = retryDelayMs(status.consecutiveFailures, this.settings.retryBaseMs, this.settings.retryMaxMs);
    state.nextAttemptAtMs = this.clock.nowMs() + delay;
    status.nextAttemptAt = new Date(state.nextAttemptAtMs).toISOString();
    this.failuresCounter.inc({ sink: state.sink.name });
    if (!this.closing) {
      this.logger.warn(
        { sink: state.sink.name, failures: status.consecutiveFailures, retryInMs: delay, reason: status.lastError },
        `Audit export to ${state.sink.name} failed; retrying`,
      );
    }
  }

  private observe(state: SinkState, cursor: AuditExportCursor): void {
    state.status.cursorSeq = Number(cursor.lastSeq);
    if (cursor.lastDeliveredAt) {
      state.status.lastDeliveredAt = new Date(cursor.lastDeliveredAt).toISOString();
      this.lastDeliveredGauge.set({ sink: state.sink.name }, new Date(cursor.lastDeliveredAt).getTime() / 1000);
    }
  }

  private async refreshLag(state: SinkState): Promise<void> {
    const lag = await this.cursors.recordsAfter(String(state.status.cursorSeq));
    state.status.lagRecords = lag;
    this.lagGauge.set({ sink: state.sink.name }, lag);
  }

  /**
   * A signed checkpoint over the batch's last row, if the batch verifies from the cursor on: each
   * row links to the one before (the first to the cursor's hash), its hash matches its content and
   * its MAC the key. The rows before were checked the same way when they were exported.
   */
  private checkpointOver(state: SinkState, cursor: AuditExportCursor, rows: AuditLogRow[]): AuditCheckpoint | undefined {
    const every = this.settings.checkpointIntervalMs;
    if (every === 0 || this.clock.nowMs() - state.lastCheckpointAtMs < every) return undefined;
    let previous = cursor.lastHash;
    for (const row of rows) {
      const problem =
        row.prev_hash !== previous
          ? 'prev_hash does not link to the record before it'
          : computeAuditHash(row.prev_hash, auditRowContent(row)) !== row.hash
            ? 'hash does not match the record content'
            : row.mac !== null && computeAuditMac(this.keys.macKey, row.hash) !== row.mac
              ? 'MAC does not match'
              : null;
      if (problem) {
        state.status.chainError = `record ${row.id} (seq ${row.seq}): ${problem}; no checkpoint signed`;
        this.logger.error({ sink: state.sink.name, id: row.id, seq: row.seq }, `Audit chain does not verify at export: ${problem}`);
        return undefined;
      }
      previous = row.hash;
    }
    state.status.chainError = null;
    const last = rows[rows.length - 1];
    const unsigned = {
      format: AUDIT_CHECKPOINT_FORMAT,
      seq: Number(last.seq),
      id: last.id,
      hash: last.hash,
      createdAt: this.clock.now().toISOString(),
      keyId: this.keys.keyId,
    };
    return { ...unsigned, signature: this.keys.sign(checkpointSigningPayload(unsigned)) };
  }
}
