import { createHmac } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ExportedRecord } from './audit-export.record';

/** A destination of the audit stream: delivers one batch, in order, or throws. */
export interface AuditExportSink {
  /** Names the sink's cursor, metrics label and health entry. */
  readonly name: string;
  deliver(records: ExportedRecord[], signal: AbortSignal): Promise<void>;
}

/** The webhook's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">`. */
export const AUDIT_EXPORT_SIGNATURE_HEADER = 'x-smcp-signature';
export const AUDIT_EXPORT_BATCH_FORMAT = 'smcp-audit-export/1';

export function auditExportSignature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * POSTs `{"format": "smcp-audit-export/1", "records": [...]}`; any 2xx confirms the batch, anything
 * else (or no answer within the timeout) fails it and it is sent again, whole, after a backoff.
 * Redirects are not followed. The URL is never logged (it may carry a token in its query).
 */
export class WebhookSink implements AuditExportSink {
  readonly name = 'webhook';

  constructor(
    private readonly url: string,
    private readonly secret: string | undefined,
    private readonly timeoutMs: number,
  ) {}

  async deliver(records: ExportedRecord[], signal: AbortSignal): Promise<void> {
    const body = JSON.stringify({ format: AUDIT_EXPORT_BATCH_FORMAT, records });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.secret !== undefined)
      headers[AUDIT_EXPORT_SIGNATURE_HEADER] = auditExportSignature(this.secret, Math.floor(Date.now() / 1000), body);
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError') throw new Error(`webhook did not answer within ${this.timeoutMs} ms`);
      if (name === 'AbortError') throw new Error('webhook delivery aborted (shutting down)');
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new Error(`webhook unreachable${cause ? ` (${cause})` : ''}`);
    }
    // Drain the body so the connection can be reused; its content is not ours to log.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`webhook answered HTTP ${response.status}`);
  }
}

/**
 * Appends one JSON line per record and fsyncs before the batch counts as delivered. The file is
 * opened per batch, so a shipper that rotates it by renaming gets a fresh file on the next batch;
 * rotation and retention are the shipper's business.
 */
export class JsonLinesFileSink implements AuditExportSink {
  readonly name = 'file';

  constructor(private readonly path: string) {}

  async deliver(records: ExportedRecord[]): Promise<void> {
    const text = records.map((record) => `${JSON.stringify(record)}\n`).join('');
    const file = await open(this.path, 'a', 0o640);
    try {
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
  }
}

/**
 * The wait before retry number `failures` (1 = after the first failure): exponential from `baseMs`,
 * capped at `maxMs`, with "equal jitter" (a uniform draw in the upper half) so replicas and sinks
 * recovering together do not retry in lock step.
 */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
