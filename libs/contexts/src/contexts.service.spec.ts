import type { EntityManager } from 'typeorm';
import type { AuditEntry, AuditService } from '@app/audit';
import { AppConfig, AppException, Clock, ErrorCode, Permission, Principal } from '@app/core';
import type { ToolCatalogService } from '@app/tools';
import type { Context } from './context';
import { ContextAccessService } from './context-access.service';
import type { ContextChanges, ContextListFilter, ContextPageRequest, ContextRepository } from './context.repository';
import { ContextsErrorCode } from './contexts-error-codes';
import { ContextsService } from './contexts.service';
import type { ListContextsQueryDto } from './dto/list-contexts-query.dto';
import type { UnitOfWork } from '@app/database';

type ContextRepositoryPort = { [K in keyof ContextRepository]: ContextRepository[K] };

/** A transaction of the fake: what the service passes from `transaction` to the writes and the audit record. */
interface FakeTransaction {
  readonly transaction: number;
}

const copy = (context: Context): Context => structuredClone(context);

/**
 * ContextRepository in memory: the same answers for the same calls, with transactions that roll
 * every write back when their work throws. Records which transaction each write and row lock ran in.
 */
class InMemoryContextRepository implements ContextRepositoryPort {
  rows = new Map<string, Context>();
  /** Every write and locked read, with the transaction it ran in (undefined: outside one). */
  readonly log: Array<{ op: 'insert' | 'update' | 'delete' | 'lock'; id: string; transaction: number | undefined }> = [];
  private transactions = 0;
  private open = new Set<number>();

  async transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const before = new Map([...this.rows].map(([key, context]) => [key, copy(context)]));
    this.open.add(id);
    try {
      return await work({ transaction: id } satisfies FakeTransaction as unknown as EntityManager);
    } catch (error) {
      this.rows = before;
      throw error;
    } finally {
      this.open.delete(id);
    }
  }

  async insert(manager: EntityManager, context: Context): Promise<Context> {
    const transaction = this.transactionOf(manager, true);
    if (this.rows.has(context.id)) throw new Error(`duplicate key ${context.id}`);
    this.rows.set(context.id, copy(context));
    this.log.push({ op: 'insert', id: context.id, transaction });
    return copy(context);
  }

  async findById(id: string, manager?: EntityManager, forUpdate = false): Promise<Context | null> {
    if (forUpdate) this.log.push({ op: 'lock', id, transaction: this.transactionOf(manager, true) });
    const context = this.rows.get(id);
    return context ? copy(context) : null;
  }

  async page(filter: ContextListFilter, request: ContextPageRequest): Promise<{ contexts: Context[]; total: number }> {
    const matching = [...this.rows.values()].filter(
      (context) =>
        (filter.userId === undefined || context.userId === filter.userId) &&
        (filter.status === undefined || context.status === filter.status),
    );
    const keys = (context: Context): Array<string | number> => {
      switch (request.sort) {
        case 'created':
          return [context.createdAt.getTime(), context.id];
        case 'updated':
          return [context.updatedAt.getTime(), context.id];
        case 'name':
          return [context.name.toLowerCase(), context.name, context.id];
      }
    };
    const sign = request.direction === 'asc' ? 1 : -1;
    matching.sort((a, b) => {
      const [x, y] = [keys(a), keys(b)];
      for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i] < y[i] ? -sign : sign;
      return 0;
    });
    return { contexts: matching.slice(request.offset, request.offset + request.limit).map(copy), total: matching.length };
  }

  async update(manager: EntityManager, id: string, changes: ContextChanges, updatedAt: Date): Promise<Context> {
    const transaction = this.transactionOf(manager, true);
    const current = this.rows.get(id);
    if (!current) throw new Error(`no row ${id}`);
    const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
    const next: Context = { ...current, ...structuredClone(defined), updatedAt };
    this.rows.set(id, next);
    this.log.push({ op: 'update', id, transaction });
    return copy(next);
  }

  async delete(manager: EntityManager, id: string): Promise<void> {
    const transaction = this.transactionOf(manager, true);
    this.rows.delete(id);
    this.log.push({ op: 'delete', id, transaction });
  }

  private transactionOf(manager: EntityManager | undefined, required: boolean): number | undefined {
    const transaction = (manager as unknown as FakeTransaction | undefined)?.transaction;
    if (required && (transaction === undefined || !this.open.has(transaction))) throw new Error('write outside an open transaction');
    return transaction;
  }
}

/** The audit writer: keeps each entry with the transaction it was given; can be told to fail. */
class FakeAudit {
  readonly records: Array<{ entry: AuditEntry; transaction: number | undefined }> = [];
  failNext = false;

  async record(manager: EntityManager, entry: AuditEntry): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('audit write failed');
    }
    this.records.push({ entry, transaction: (manager as unknown as FakeTransaction).transaction });
  }
}

class FakeClock extends Clock {
  at = new Date('2030-01-01T00:00:00.000Z');
  override now(): Date {
    return new Date(this.at);
  }
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

/** Catalogue tools: `echo` needs tools:echo, `admin-only` needs admin:tools, `gone` is no longer listed. */
const TOOLS = new Map(
  [
    { id: 'echo', available: true, permissions: ['tools:echo'] },
    { id: 'clock', available: true, permissions: [] },
    { id: 'admin-only', available: true, permissions: ['admin:tools'] },
    { id: 'gone', available: false, permissions: [] },
  ].map((tool) => [tool.id, tool]),
);

const principal = (userId: string, permissions: string[], extra: Partial<Principal> = {}): Principal => ({
  userId,
  email: `${userId}@example.test`,
  sessionId: `ses_${userId}`,
  roles: ['user'],
  permissions,
  via: 'jwt',
  ...extra,
});

const USER = [Permission.CONTEXTS_READ, Permission.CONTEXTS_WRITE, 'tools:echo'];
const alice = principal('usr_alice', USER);
const bob = principal('usr_bob', USER);
const adminReader = principal('usr_auditor', [...USER, Permission.ADMIN_CONTEXTS_READ]);
const admin = principal('usr_admin', [...USER, Permission.ADMIN_CONTEXTS_READ, Permission.ADMIN_CONTEXTS_WRITE]);
const client = { ipAddress: '203.0.113.7', userAgent: 'spec' };

const query = (fields: Partial<ListContextsQueryDto> = {}): ListContextsQueryDto =>
  ({ page: 1, limit: 20, ...fields }) as ListContextsQueryDto;

/** The AppException a call rejects with, for comparing status, code and details. */
async function failure(
  call: Promise<unknown>,
): Promise<{ status: number; code: string; details: Array<{ field?: string; code?: string }> }> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof AppException)) throw new Error(`expected an AppException, got ${String(error)}`);
  return { status: error.getStatus(), code: error.code, details: error.details.map(({ field, code }) => ({ field, code })) };
}

describe('ContextsService (in-memory repository)', () => {
  let repository: InMemoryContextRepository;
  let audit: FakeAudit;
  let clock: FakeClock;
  let service: ContextsService;

  beforeEach(() => {
    repository = new InMemoryContextRepository();
    audit = new FakeAudit();
    clock = new FakeClock();
    const contexts = repository as unknown as ContextRepository;
    const catalog = { whenReady: async () => undefined, find: (id: string) => TOOLS.get(id) } as unknown as ToolCatalogService;
    const config = { tools: { maxTimeoutMs: 60_000 } } as AppConfig;
    // The unit of work opens the in-memory repository's transactions (writes roll back when the work throws).
    const unitOfWork = { run: <T>(work: (manager: EntityManager) => Promise<T>) => repository.transaction(work) } as unknown as UnitOfWork;
    service = new ContextsService(
      contexts,
      new ContextAccessService(contexts),
      catalog,
      audit as unknown as AuditService,
      clock,
      unitOfWork,
      config,
      // No upstreams: an id that is no catalogue tool is unknown.
      { membership: async () => 'unknown' } as never,
    );
  });

  const create = (owner: Principal, name: string, fields: { tools?: string[]; settings?: Record<string, unknown> } = {}) =>
    service.create(owner, { name, ...fields }, client);

  describe('create', () => {
    it('stores the context for its owner with defaults, tools without repeats, and its audit record in the same transaction', async () => {
      const dto = await service.create(
        alice,
        { name: 'Research', tools: ['echo', 'clock', 'echo'], settings: { defaultTimeoutMs: 5_000 } },
        client,
      );

      expect(dto).toEqual({
        id: dto.id,
        name: 'Research',
        description: '',
        status: 'active',
        metadata: {},
        tools: ['echo', 'clock'],
        settings: { defaultTimeoutMs: 5_000 },
        createdAt: '2030-01-01T00:00:00.000Z',
        updatedAt: '2030-01-01T00:00:00.000Z',
      });
      expect(dto.id).toMatch(/^ctx_/);
      expect(repository.rows.get(dto.id)?.userId).toBe('usr_alice');
      const [insert] = repository.log;
      expect(insert).toEqual({ op: 'insert', id: dto.id, transaction: expect.any(Number) });
      expect(audit.records).toEqual([
        {
          transaction: insert.transaction,
          entry: {
            action: 'context.create',
            userId: 'usr_alice',
            resource: `context:${dto.id}`,
            result: 'success',
            severity: 'info',
            ipAddress: client.ipAddress,
            userAgent: client.userAgent,
            details: { ownerId: 'usr_alice', name: 'Research', tools: ['echo', 'clock'] },
          },
        },
      ]);
    });

    it('reports every unknown tool (400), with the forbidden ones beside them, and stores nothing', async () => {
      expect(await failure(create(alice, 'x', { tools: ['nope', 'admin-only', 'gone'] }))).toEqual({
        status: 400,
        code: ErrorCode.VALIDATION_ERROR,
        details: [
          { field: 'tools[0]', code: ContextsErrorCode.UNKNOWN_TOOL },
          { field: 'tools[2]', code: ContextsErrorCode.UNKNOWN_TOOL },
          { field: 'tools[1]', code: ContextsErrorCode.TOOL_NOT_PERMITTED },
        ],
      });
      expect(repository.rows.size).toBe(0);
      expect(audit.records).toEqual([]);
    });

    it('refuses tools the caller may not call (403) and stores nothing', async () => {
      expect(await failure(create(alice, 'x', { tools: ['clock', 'admin-only'] }))).toEqual({
        status: 403,
        code: ErrorCode.FORBIDDEN,
        details: [{ field: 'tools[1]', code: ContextsErrorCode.TOOL_NOT_PERMITTED }],
      });
      expect(repository.rows.size).toBe(0);
    });

    it('refuses settings out of bounds (400)', async () => {
      const refused = await failure(create(alice, 'x', { settings: { defaultTimeoutMs: 60_001 } }));
      expect(refused).toEqual({
        status: 400,
        code: ErrorCode.VALIDATION_ERROR,
        details: [{ field: 'settings.defaultTimeoutMs', code: expect.any(String) }],
      });
      expect(repository.rows.size).toBe(0);
    });

    it('keeps no context when its audit record cannot be written', async () => {
      audit.failNext = true;
      await expect(create(alice, 'x')).rejects.toThrow('audit write failed');
      expect(repository.rows.size).toBe(0);
    });
  });

  describe('list', () => {
    beforeEach(async () => {
      for (const [owner, name] of [
        [alice, 'beta'],
        [alice, 'Alpha'],
        [bob, 'gamma'],
        [alice, 'alpha'],
      ] as const) {
        await create(owner, name);
        clock.advance(1_000);
      }
    });

    it('shows a user their own contexts only, newest first by default', async () => {
      const listed = await service.list(alice, query());
      expect(listed.contexts.map((context) => context.name)).toEqual(['alpha', 'Alpha', 'beta']);
      expect(listed.pagination).toEqual({ page: 1, limit: 20, total: 3, pages: 1 });
    });

    it("refuses a user another user's list (403), and any list to a key bound to one context", async () => {
      expect(await failure(service.list(alice, query({ userId: 'usr_bob' })))).toEqual({
        status: 403,
        code: ErrorCode.FORBIDDEN,
        details: [],
      });
      const bound = principal('usr_alice', USER, { via: 'api_key', contextId: 'ctx_any' });
      expect(await failure(service.list(bound, query()))).toEqual({ status: 403, code: ErrorCode.FORBIDDEN, details: [] });
    });

    it("shows an administrator everyone's contexts, or one user's", async () => {
      expect((await service.list(adminReader, query())).pagination.total).toBe(4);
      const bobs = await service.list(adminReader, query({ userId: 'usr_bob' }));
      expect(bobs.contexts.map((context) => context.name)).toEqual(['gamma']);
    });

    it('sorts by name ascending by default (case folded, ties in byte order), and pages', async () => {
      const first = await service.list(alice, query({ sort: 'name', limit: 2 }));
      expect(first.contexts.map((context) => context.name)).toEqual(['Alpha', 'alpha']);
      expect(first.pagination).toEqual({ page: 1, limit: 2, total: 3, pages: 2 });
      const second = await service.list(alice, query({ sort: 'name', limit: 2, page: 2 }));
      expect(second.contexts.map((context) => context.name)).toEqual(['beta']);
      const descending = await service.list(alice, query({ sort: 'name', order: 'desc' }));
      expect(descending.contexts.map((context) => context.name)).toEqual(['beta', 'alpha', 'Alpha']);
    });

    it('filters by status', async () => {
      const [beta] = (await service.list(alice, query({ sort: 'name', order: 'desc', limit: 1 }))).contexts;
      await service.update(alice, beta.id, { status: 'archived' }, client);
      const archived = await service.list(alice, query({ status: 'archived' }));
      expect(archived.contexts.map((context) => context.id)).toEqual([beta.id]);
      expect((await service.list(alice, query({ status: 'active' }))).pagination.total).toBe(2);
    });
  });

  describe('get', () => {
    it('answers the owner and an administrator, and 404 to anyone else or a key bound to another context', async () => {
      const { id } = await create(alice, 'mine');
      expect((await service.get(alice, id)).name).toBe('mine');
      expect((await service.get(adminReader, id)).name).toBe('mine');
      expect(await failure(service.get(bob, id))).toEqual({ status: 404, code: ErrorCode.NOT_FOUND, details: [] });
      expect(await failure(service.get(bob, 'ctx_missing'))).toEqual({ status: 404, code: ErrorCode.NOT_FOUND, details: [] });
      const otherKey = principal('usr_alice', USER, { via: 'api_key', contextId: 'ctx_other' });
      expect(await failure(service.get(otherKey, id))).toEqual({ status: 404, code: ErrorCode.NOT_FOUND, details: [] });
      const boundKey = principal('usr_alice', USER, { via: 'api_key', contextId: id });
      expect((await service.get(boundKey, id)).id).toBe(id);
    });
  });

  describe('update', () => {
    it('changes the given fields under a row lock, audited with before and after in the same transaction', async () => {
      const { id } = await create(alice, 'old', { tools: ['clock'] });
      clock.advance(5_000);
      const dto = await service.update(alice, id, { name: 'new', tools: ['echo', 'echo'], metadata: { team: 'x' } }, client);

      expect(dto).toMatchObject({
        id,
        name: 'new',
        tools: ['echo'],
        metadata: { team: 'x' },
        status: 'active',
        updatedAt: '2030-01-01T00:00:05.000Z',
      });
      expect(dto.createdAt).toBe('2030-01-01T00:00:00.000Z');
      const [lock, update] = repository.log.slice(1);
      expect(lock).toEqual({ op: 'lock', id, transaction: expect.any(Number) });
      expect(update).toEqual({ op: 'update', id, transaction: lock.transaction });
      const { entry, transaction } = audit.records[1];
      expect(transaction).toBe(lock.transaction);
      expect(entry.action).toBe('context.update');
      expect(entry.details).toEqual({
        ownerId: 'usr_alice',
        changes: ['name', 'metadata', 'tools'],
        name: { before: 'old', after: 'new' },
        tools: { before: ['clock'], after: ['echo'] },
      });
    });

    it('audits archiving as context.archive', async () => {
      const { id } = await create(alice, 'c');
      await service.update(alice, id, { status: 'archived' }, client);
      expect(audit.records[1].entry.action).toBe('context.archive');
      expect(audit.records[1].entry.details).toEqual({
        ownerId: 'usr_alice',
        changes: ['status'],
        status: { before: 'active', after: 'archived' },
      });
      expect(repository.rows.get(id)?.status).toBe('archived');
    });

    it('wants at least one field (400)', async () => {
      const { id } = await create(alice, 'c');
      expect(await failure(service.update(alice, id, {}, client))).toEqual({
        status: 400,
        code: ErrorCode.VALIDATION_ERROR,
        details: [{ field: undefined, code: 'required' }],
      });
    });

    it('lets an administrator with write change it, refuses one who may only read (403) and hides it from others (404)', async () => {
      const { id } = await create(alice, 'c');
      expect(await failure(service.update(adminReader, id, { name: 'x' }, client))).toEqual({
        status: 403,
        code: ErrorCode.FORBIDDEN,
        details: [],
      });
      expect(await failure(service.update(bob, id, { name: 'x' }, client))).toEqual({
        status: 404,
        code: ErrorCode.NOT_FOUND,
        details: [],
      });
      expect(repository.rows.get(id)?.name).toBe('c');
      expect((await service.update(admin, id, { name: 'by admin' }, client)).name).toBe('by admin');
      expect(audit.records.at(-1)?.entry).toMatchObject({ userId: 'usr_admin', details: { ownerId: 'usr_alice' } });
    });

    it('keeps the old values when the audit record cannot be written', async () => {
      const { id } = await create(alice, 'c');
      audit.failNext = true;
      await expect(service.update(alice, id, { name: 'lost' }, client)).rejects.toThrow('audit write failed');
      expect(repository.rows.get(id)?.name).toBe('c');
    });
  });

  describe('remove', () => {
    it('deletes it, audited as a warning with what was deleted, in the same transaction', async () => {
      const { id } = await create(alice, 'c', { tools: ['echo'] });
      await service.remove(alice, id, client);
      expect(repository.rows.has(id)).toBe(false);
      const deleted = repository.log.find((entry) => entry.op === 'delete');
      expect(audit.records[1]).toEqual({
        transaction: deleted?.transaction,
        entry: expect.objectContaining({
          action: 'context.delete',
          severity: 'warning',
          resource: `context:${id}`,
          details: { ownerId: 'usr_alice', name: 'c', status: 'active', tools: ['echo'] },
        }),
      });
    });

    it('deletes nothing for someone who may not change it', async () => {
      const { id } = await create(alice, 'c');
      expect(await failure(service.remove(bob, id, client))).toEqual({ status: 404, code: ErrorCode.NOT_FOUND, details: [] });
      expect(await failure(service.remove(adminReader, id, client))).toEqual({ status: 403, code: ErrorCode.FORBIDDEN, details: [] });
      expect(repository.rows.has(id)).toBe(true);
      expect(audit.records).toHaveLength(1);
    });

    it('keeps the context when the audit record cannot be written', async () => {
      const { id } = await create(alice, 'c');
      audit.failNext = true;
      await expect(service.remove(alice, id, client)).rejects.toThrow('audit write failed');
      expect(repository.rows.has(id)).toBe(true);
    });
  });
});
