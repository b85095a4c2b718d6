import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { dedup, exportStatus, SECRET, SinkStatus, WebhookReceiver } from '../audit/audit-export-kit';
import { dropPrefix, REDIS_URL, sharedSecrets, uniquePrefix } from '../redis/redis-test-kit';
import { ADMIN_EMAIL, Caller, identityEnv, login, signUp } from '../support/identity';
import { waitFor } from '../support/polling';
import type { ServerProcess } from '../support/server-process';
import { ReplicaSet } from './replica-kit';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { http } from '../support/test-app';

/**
 * Audit export with two replicas (two built-server processes on one PostgreSQL and Redis, as the
 * chart runs them), both configured with the same webhook: one exports at a time, by the lease on
 * the sink's cursor row. The exporting replica is killed with SIGKILL while a batch it sent is still
 * unconfirmed (the collector holds the request open); the other replica, which kept answering
 * requests, takes the sink over once the lease has run out and re-sends from the durable cursor.
 * Afterwards every audit record in the database has arrived, in seq order, a record repeated only as
 * an identical re-send, and the chain verifies.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sign-ins against whichever replicas are alive; each replica's failures are counted apart. */
class SignInLoad {
  readonly ok = new Map<ServerProcess, number>();
  readonly failed = new Map<ServerProcess, string[]>();
  private running = false;
  private workers: Array<Promise<void>> = [];

  constructor(private readonly emails: string[]) {}

  start(targets: () => ServerProcess[]): void {
    this.running = true;
    this.workers = this.emails.map((email, i) => this.work(targets, email, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async work(targets: () => ServerProcess[], email: string, i: number): Promise<void> {
    for (let n = i; this.running; n += 1) {
      const live = targets();
      const replica = live[n % live.length];
      const outcome = await login(replica, email).then(
        () => undefined,
        (error: Error) => error.message,
      );
      if (outcome === undefined) this.ok.set(replica, (this.ok.get(replica) ?? 0) + 1);
      else this.failed.set(replica, [...(this.failed.get(replica) ?? []), outcome]);
    }
  }
}

describe('audit export across two replicas: the exporting one is SIGKILLed mid-delivery', () => {
  const receiver = new WebhookReceiver();
  const replicas = new ReplicaSet();
  let database: TestDatabase;
  let prefix: string;
  let survivor: ServerProcess;
  let killed: ServerProcess;
  let records: Array<{ seq: number; id: string }>;
  const observed = {
    exportersBefore: [] as boolean[],
    hungAtKill: 0,
    survivorOkAfterKill: 0,
    survivorFailed: [] as string[],
    survivorStatus: undefined as SinkStatus | undefined,
  };

  const webhookStatus = async (server: ServerProcess, admin: Caller) =>
    (await exportStatus(server, admin)).find((status) => status.sink === 'webhook');

  beforeAll(async () => {
    await receiver.start();
    database = await createTestDatabase('smcp', { schema: 'migrated' });
    prefix = uniquePrefix();
    const env = identityEnv({
      LOG_LEVEL: 'warn',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      ...sharedSecrets(),
      // One audit key for the deployment, as the chart's Secret gives every pod: the chain is one.
      AUDIT_HMAC_KEY: randomBytes(48).toString('base64url'),
      AUDIT_EXPORT_WEBHOOK_URL: receiver.url,
      AUDIT_EXPORT_WEBHOOK_SECRET: SECRET,
      // The lease is 2 × this + 10 s: the survivor may take over 12 s after the exporter's last renewal.
      AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS: '1000',
      AUDIT_EXPORT_BATCH_SIZE: '10',
      AUDIT_EXPORT_INTERVAL_MS: '100',
      AUDIT_EXPORT_RETRY_BASE_MS: '100',
      AUDIT_EXPORT_RETRY_MAX_MS: '1000',
      AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '0',
    });
    const a = await replicas.start(env);
    const b = await replicas.start(env);
    const emails = [1, 2, 3, 4].map((n) => `replica-load${n}@example.com`);
    for (const [i, email] of emails.entries()) await signUp(i % 2 === 0 ? a : b, email);
    const adminA = await login(a, ADMIN_EMAIL);
    const adminB = await login(b, ADMIN_EMAIL);

    // Both replicas serve sign-ins; exactly one of them exports.
    const load = new SignInLoad(emails);
    let live = [a, b];
    load.start(() => live);
    await waitFor('records at the webhook', () => receiver.records().length > 0, 60_000);
    const [statusA, statusB] = [await webhookStatus(a, adminA), await webhookStatus(b, adminB)];
    observed.exportersBefore = [statusA?.exporting === true, statusB?.exporting === true];
    [killed, survivor] = statusA?.exporting ? [a, b] : [b, a];
    const survivorAdmin = survivor === a ? adminA : adminB;

    // The collector stops confirming: the exporter's next batch is sent and left unanswered.
    receiver.mode = 'hang';
    await waitFor('a batch the exporter sent and the collector holds open', () => receiver.hung > 0, 60_000);
    observed.hungAtKill = receiver.hung;
    live = [survivor];
    killed.child.kill('SIGKILL');
    await killed.exited;
    receiver.mode = 'up';
    const okAtKill = load.ok.get(survivor) ?? 0;
    const failedAtKill = (load.failed.get(survivor) ?? []).length;

    // The survivor takes the sink over when the dead replica's lease runs out, under load.
    observed.survivorStatus = await waitFor(
      'the surviving replica to take the sink over',
      async () => {
        const status = await webhookStatus(survivor, survivorAdmin);
        return status?.exporting ? status : undefined;
      },
      90_000,
    );
    await sleep(1_000);
    await load.stop();
    observed.survivorOkAfterKill = (load.ok.get(survivor) ?? 0) - okAtKill;
    observed.survivorFailed = (load.failed.get(survivor) ?? []).slice(failedAtKill);

    const pg = new PgClient({ connectionString: database.url });
    await pg.connect();
    try {
      const rows = await pg.query<{ seq: string; id: string }>('SELECT seq, id FROM audit_logs ORDER BY seq');
      records = rows.rows.map((row) => ({ seq: Number(row.seq), id: row.id }));
    } finally {
      await pg.end();
    }
    await waitFor(
      'every database record at the webhook',
      () => {
        const arrived = new Set(dedup(receiver.records()).unique.map((record) => record.metadata.uid));
        return records.every((record) => arrived.has(record.id));
      },
      120_000,
    );
  }, 600_000);

  afterAll(async () => {
    await replicas.stopAll();
    await receiver.kill();
    if (prefix) await dropPrefix(prefix);
    await database?.drop();
  });

  it('exported from one replica at a time, and killed the one exporting while its batch was unconfirmed', () => {
    expect(observed.exportersBefore.filter(Boolean)).toHaveLength(1);
    expect(observed.hungAtKill).toBeGreaterThan(0);
    expect(killed.child.signalCode).toBe('SIGKILL');
  });

  it('kept answering on the survivor, which then took the sink over', () => {
    expect(observed.survivorFailed).toEqual([]);
    expect(observed.survivorOkAfterKill).toBeGreaterThan(0);
    expect(observed.survivorStatus).toMatchObject({ sink: 'webhook', exporting: true });
  });

  it('delivered every database record, in seq order, from both replicas', () => {
    const unique = dedup(receiver.records()).unique;
    expect(records.length).toBeGreaterThan(0);
    expect(unique.map((record) => record.metadata.uid)).toEqual(records.map((record) => record.id));
    expect(receiver.badSignatures).toBe(0);
  });

  it('repeated a record only as an identical re-send of the batch the dead replica never saw confirmed', () => {
    const { repeats } = dedup(receiver.records());
    for (const { first, again } of repeats) expect(again).toEqual(first);
  });

  it('left one chain that verifies', async () => {
    const admin = await login(survivor, ADMIN_EMAIL);
    const verify = await http(survivor.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ valid: true, unkeyedRecords: 0 });
  });
});
