import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AUDIT_EXPORT_SIGNATURE_HEADER, ExportedRecord } from '@app/audit';
import type { Caller } from '../support/identity';
import { http } from '../support/test-app';

/** What the audit export suites share: a SIEM's webhook collector of our own, and how to read a stream. */

export const SECRET = 'sK4n8Qw2Zt6Lp0Vx3Rb7Ym1Hc5Jd9Gf2Ua8Ne';

/** A SIEM's HTTP collector: checks the signature, keeps every batch it confirmed, can hang or die. */
export class WebhookReceiver {
  /** Batches answered 200, in arrival order. */
  readonly batches: ExportedRecord[][] = [];
  badSignatures = 0;
  /** Requests taken while hanging: read whole, never answered. */
  hung = 0;
  mode: 'up' | 'hang' = 'up';
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  get url(): string {
    return `http://127.0.0.1:${this.port}/ingest`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops every connection (hung ones too): the sink is gone. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  records(): ExportedRecord[] {
    return this.batches.flat();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (this.mode === 'hang') {
        this.hung += 1;
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      if (!signatureValid(String(req.headers[AUDIT_EXPORT_SIGNATURE_HEADER] ?? ''), body)) {
        this.badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      this.batches.push((JSON.parse(body) as { records: ExportedRecord[] }).records);
      res.writeHead(200).end();
    });
  }
}

function signatureValid(header: string, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const expected = createHmac('sha256', SECRET).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

/** The audit records of a stream, each kept at its first arrival, and the repeats. */
export function dedup(stream: ExportedRecord[]): {
  unique: ExportedRecord[];
  repeats: Array<{ first: ExportedRecord; again: ExportedRecord }>;
} {
  const seen = new Map<string, ExportedRecord>();
  const unique: ExportedRecord[] = [];
  const repeats: Array<{ first: ExportedRecord; again: ExportedRecord }> = [];
  for (const record of stream.filter((r) => r.smcp.record_type === 'audit_record')) {
    const first = seen.get(record.metadata.uid);
    if (first) repeats.push({ first, again: record });
    else {
      seen.set(record.metadata.uid, record);
      unique.push(record);
    }
  }
  return { unique, repeats };
}

export interface SinkStatus {
  sink: string;
  lagRecords: number | null;
  cursorSeq: number;
  exporting: boolean;
  consecutiveFailures: number;
  lastError: string | null;
}

export async function exportStatus(t: { baseUrl: string }, admin: Caller): Promise<SinkStatus[]> {
  const res = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: admin.token });
  if (res.status !== 200) throw new Error(`admin health: ${res.status}`);
  return res.body.metrics.auditExport as SinkStatus[];
}
