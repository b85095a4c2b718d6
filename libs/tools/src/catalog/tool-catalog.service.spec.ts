import { Logger } from '@nestjs/common';
import type { AuditEntry } from '@app/audit';
import { AppException, BackgroundJobs, Principal } from '@app/core';
import { ToolSchemaValidator } from '../execution/tool-schema-validator';
import type { ToolDefinition, ToolProvider } from '../provider/tool-provider';
import { ToolsErrorCode } from '../tool-error-codes';
import { TOOL_CATALOGUE_CHANGED, ToolCatalogService } from './tool-catalog.service';
import { ToolRepository } from './tool.repository';
import type { ToolRow } from './tool.repository';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const admin = { userId: 'usr_admin' } as Principal;
const client = { ipAddress: '203.0.113.7', userAgent: 'spec' };

function definition(id: string, overrides: Partial<ToolDefinition> = {}): ToolDefinition {
  return {
    id,
    name: id,
    description: `${id} tool`,
    version: '1.0.0',
    category: 'system',
    inputSchema: { type: 'object' },
    outputSchema: { type: 'object' },
    permissions: ['tools:execute'],
    rateLimit: { requests: 10, window: '1m' },
    ...overrides,
  };
}

/**
 * The `tools` table as a map, behind the handful of statements ToolCatalogService sends (matched
 * by their start), under the real ToolRepository: the tests below only look at `rows` and at
 * what the service answers.
 */
function toolsTable() {
  const rows = new Map<string, ToolRow>();
  const sorted = () => [...rows.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((row) => ({ ...row }));
  const query = async (sql: string, params: unknown[] = []): Promise<unknown> => {
    const statement = sql.replace(/\s+/g, ' ').trim();
    if (statement.startsWith('SELECT pg_advisory_xact_lock')) return [{}];
    if (/^SELECT .* FROM tools ORDER BY id$/.test(statement)) return sorted();
    if (/^SELECT .* FROM tools WHERE id = \$1 FOR UPDATE$/.test(statement))
      return rows.has(params[0] as string) ? [{ ...rows.get(params[0] as string)! }] : [];
    if (statement.startsWith('INSERT INTO tools')) {
      const [
        id,
        name,
        description,
        version,
        category,
        enabled,
        input,
        output,
        permissions,
        requests,
        window,
        provider,
        annotations,
        def,
        hash,
        now,
      ] = params as any[];
      rows.set(id, {
        id,
        name,
        description,
        version,
        category,
        enabled,
        permissions,
        provider,
        input_schema: JSON.parse(input),
        output_schema: JSON.parse(output),
        rate_limit_requests: requests,
        rate_limit_window: window,
        annotations: JSON.parse(annotations),
        definition: JSON.parse(def),
        definition_hash: hash,
        overrides: {},
        available: true,
        created_at: now,
        updated_at: now,
        updated_by: null,
      });
      return [];
    }
    if (statement.startsWith('UPDATE tools SET available = false')) {
      Object.assign(rows.get(params[0] as string)!, { available: false, updated_at: params[1] });
      return [[], 1];
    }
    if (statement.startsWith('UPDATE tools SET name = $2')) {
      const [
        id,
        name,
        description,
        version,
        category,
        enabled,
        input,
        output,
        permissions,
        requests,
        window,
        provider,
        annotations,
        def,
        hash,
        now,
      ] = params as any[];
      Object.assign(rows.get(id)!, {
        name,
        description,
        version,
        category,
        enabled,
        permissions,
        provider,
        input_schema: JSON.parse(input),
        output_schema: JSON.parse(output),
        rate_limit_requests: requests,
        rate_limit_window: window,
        annotations: JSON.parse(annotations),
        definition: JSON.parse(def),
        definition_hash: hash,
        available: true,
        updated_at: now,
      });
      return [[], 1];
    }
    if (statement.startsWith('UPDATE tools SET enabled = $2')) {
      const [id, enabled, permissions, requests, window, overrides, now, by] = params as any[];
      const row = rows.get(id)!;
      Object.assign(row, {
        enabled,
        permissions,
        rate_limit_requests: requests,
        rate_limit_window: window,
        overrides: JSON.parse(overrides),
        updated_at: now,
        updated_by: by,
      });
      return [[{ ...row }], 1];
    }
    throw new Error(`unexpected SQL in the fake tools table: ${statement}`);
  };
  return { rows, query };
}

/** The catalogue over the fake table, fake providers, a real schema validator. Constructor wiring lives here only. */
function setup() {
  const table = toolsTable();
  const providers = new Map<string, { name: string; listTools: () => Promise<ToolDefinition[]> }>();
  const audited: AuditEntry[] = [];
  const remote: Array<(change: unknown, origin: 'local' | 'remote') => void> = [];
  const bus = {
    subscribe: (_event: unknown, handler: (change: unknown, origin: 'local' | 'remote') => void) => remote.push(handler),
    onResync: () => undefined,
    publish: jest.fn(async () => undefined),
  };
  let now = T0;
  const service = new ToolCatalogService(
    // The real repository (its SQL) over the fake table.
    new ToolRepository({
      query: table.query,
      manager: { query: table.query },
    } as never),
    { isCurrent: async () => true } as never,
    { all: () => [...providers.values()] as unknown as ToolProvider[], get: (name: string) => providers.get(name) } as never,
    new ToolSchemaValidator(),
    { record: async (_manager: unknown, entry: AuditEntry) => void audited.push(entry) } as never,
    { now: () => now, nowMs: () => now.getTime() } as never,
    bus as never,
    new BackgroundJobs(),
    { run: async <T>(work: (manager: { query: typeof table.query }) => Promise<T>) => work({ query: table.query }) } as never,
  );
  return {
    service,
    table,
    audited,
    bus,
    provide: (name: string, list: () => Promise<ToolDefinition[]>) => providers.set(name, { name, listTools: list }),
    advance: (ms: number) => (now = new Date(now.getTime() + ms)),
    /** Delivers an announcement from another replica. */
    announceFromElsewhere: () => remote.forEach((handler) => handler({ toolIds: [] }, 'remote')),
  };
}

async function refusal(promise: Promise<unknown>): Promise<AppException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppException) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('ToolCatalogService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('stores every listed tool at start, serves it from memory, audits and announces what it added', async () => {
    const f = setup();
    f.provide('builtin', async () => [definition('tool_b'), definition('tool_a', { category: 'data', enabledByDefault: false })]);
    await f.service.onApplicationBootstrap();
    f.service.onApplicationShutdown();

    expect([...f.table.rows.keys()].sort()).toEqual(['tool_a', 'tool_b']);
    expect(f.service.find('tool_a')).toMatchObject({
      id: 'tool_a',
      category: 'data',
      enabled: false,
      available: true,
      provider: 'builtin',
      rateWindowMs: 60_000,
    });
    expect(f.service.list({ offset: 0, limit: 10 }).tools.map((tool) => tool.id)).toEqual(['tool_a', 'tool_b']);
    expect(f.audited).toEqual([
      {
        action: 'tool.catalog.reconciled',
        resource: 'tools',
        result: 'success',
        severity: 'info',
        details: { added: ['tool_a', 'tool_b'], updated: [], restored: [], unavailable: [] },
      },
    ]);
    expect(f.bus.publish).toHaveBeenCalledWith(TOOL_CATALOGUE_CHANGED, { toolIds: ['tool_a', 'tool_b'] });
    await expect(f.service.whenReady()).resolves.toBeUndefined();
  });

  it('refuses malformed definitions and keeps the first of two with one id', async () => {
    const f = setup();
    f.provide('p', async () => [
      definition('bad id!'),
      definition('tool_category', { category: 'toys' as never }),
      definition('tool_permission', { permissions: ['Not A Permission'] }),
      definition('tool_window', { rateLimit: { requests: 1, window: 'forever' } }),
      definition('tool_schema', { inputSchema: { type: 'object', properties: { x: { type: 'no-such-type' } } } }),
      definition('tool_ok', { version: '1' }),
      definition('tool_ok', { version: '2' }),
    ]);
    await f.service.reconcile();
    expect([...f.table.rows.keys()]).toEqual(['tool_ok']);
    expect(f.service.find('tool_ok')!.version).toBe('1');
  });

  it("on a later start: updates changed definitions keeping the admin's overrides, marks vanished ones unavailable, keeps the tools of a provider that did not answer", async () => {
    const f = setup();
    let builtin = [definition('tool_a'), definition('tool_gone')];
    f.provide('builtin', async () => builtin);
    f.provide('upstream', async () => [definition('up.echo')]);
    await f.service.reconcile();
    await f.service.update(admin, 'tool_a', { enabled: false }, client);
    f.audited.length = 0;

    builtin = [definition('tool_a', { description: 'better words' })];
    f.provide('upstream', async () => {
      throw new Error('upstream down');
    });
    f.advance(1_000);
    await f.service.reconcile();

    expect(f.audited.map((entry) => entry.details)).toEqual([{ added: [], updated: ['tool_a'], restored: [], unavailable: ['tool_gone'] }]);
    expect(f.service.find('tool_a')).toMatchObject({ description: 'better words', enabled: false, overrides: { enabled: false } });
    expect(f.service.find('tool_gone')!.available).toBe(false);
    expect(f.service.find('up.echo')!.available).toBe(true);
    expect(f.service.list({ offset: 0, limit: 10 }).tools.map((tool) => tool.id)).toEqual(['tool_a', 'up.echo']);
  });

  it('writes, audits and announces nothing when nothing changed', async () => {
    const f = setup();
    f.provide('builtin', async () => [definition('tool_a')]);
    await f.service.reconcile();
    f.audited.length = 0;
    f.bus.publish.mockClear();
    await f.service.reconcile();
    expect(f.audited).toEqual([]);
    expect(f.bus.publish).not.toHaveBeenCalled();
  });

  describe("an administrator's change", () => {
    async function withTools() {
      const f = setup();
      f.provide('builtin', async () => [
        definition('tool_a'),
        definition('tool_b', { category: 'data' }),
        definition('tool_pending', { pendingApproval: true }),
      ]);
      await f.service.reconcile();
      f.audited.length = 0;
      f.bus.publish.mockClear();
      return f;
    }

    it('applies at once in memory, is audited with before and after, and is announced to the other replicas', async () => {
      const f = await withTools();
      const updated = await f.service.update(admin, 'tool_a', { enabled: false, rateLimit: { requests: 3, window: '30s' } }, client);

      expect(updated).toMatchObject({ enabled: false, rateLimit: { requests: 3, window: '30s' }, rateWindowMs: 30_000 });
      expect(f.service.find('tool_a')).toMatchObject({ enabled: false, rateLimit: { requests: 3, window: '30s' } });
      expect(f.table.rows.get('tool_a')).toMatchObject({
        enabled: false,
        rate_limit_requests: 3,
        overrides: { enabled: false, rateLimit: { requests: 3, window: '30s' } },
      });
      expect(f.audited).toEqual([
        {
          action: 'admin.tool.updated',
          userId: 'usr_admin',
          resource: 'tool:tool_a',
          result: 'success',
          severity: 'warning',
          ipAddress: '203.0.113.7',
          userAgent: 'spec',
          details: {
            changes: { enabled: false, rateLimit: { requests: 3, window: '30s' } },
            before: { enabled: true, permissions: ['tools:execute'], rateLimit: { requests: 10, window: '1m' } },
            after: { enabled: false, permissions: ['tools:execute'], rateLimit: { requests: 3, window: '30s' } },
          },
        },
      ]);
      expect(f.bus.publish).toHaveBeenCalledWith(TOOL_CATALOGUE_CHANGED, { toolIds: ['tool_a'] });
    });

    it("returns a field to the provider's default with null", async () => {
      const f = await withTools();
      await f.service.update(admin, 'tool_a', { permissions: ['system:read', 'system:read'] }, client);
      expect(f.service.find('tool_a')!.permissions).toEqual(['system:read']);
      const back = await f.service.update(admin, 'tool_a', { permissions: null }, client);
      expect(back.permissions).toEqual(['tools:execute']);
      expect(back.overrides).toEqual({});
    });

    it('refuses an empty change or a malformed window (400), an unknown tool (404), enabling a tool awaiting approval (409)', async () => {
      const f = await withTools();
      expect((await refusal(f.service.update(admin, 'tool_a', {}, client))).getStatus()).toBe(400);
      const window = await refusal(f.service.update(admin, 'tool_a', { rateLimit: { requests: 1, window: '1y' } }, client));
      expect(window.details).toEqual([expect.objectContaining({ field: 'rateLimit.window' })]);
      expect((await refusal(f.service.update(admin, 'tool_nope', { enabled: true }, client))).getStatus()).toBe(404);
      const pending = await refusal(f.service.update(admin, 'tool_pending', { enabled: true }, client));
      expect({ status: pending.getStatus(), code: pending.code }).toEqual({ status: 409, code: ToolsErrorCode.TOOL_PENDING_APPROVAL });
      expect(f.audited).toEqual([]);
    });

    it('tells change listeners, and moves the listing revision', async () => {
      const f = await withTools();
      const listener = jest.fn();
      f.service.onChanged(listener);
      const revision = f.service.revision;
      await f.service.update(admin, 'tool_b', { enabled: false }, client);
      expect(listener).toHaveBeenCalledTimes(1);
      expect(f.service.revision).toBeGreaterThan(revision);
      expect(f.service.list({ enabled: false, offset: 0, limit: 10 }).tools.map((tool) => tool.id)).toEqual(['tool_b', 'tool_pending']);
      expect(f.service.list({ category: 'data', offset: 0, limit: 10 })).toMatchObject({ total: 1, tools: [{ id: 'tool_b' }] });
      expect(f.service.list({ offset: 1, limit: 1 })).toMatchObject({ total: 3, tools: [{ id: 'tool_b' }] });
    });
  });

  it('re-reads the table when another replica announces a change', async () => {
    const f = setup();
    f.provide('builtin', async () => [definition('tool_a')]);
    await f.service.onApplicationBootstrap();
    f.service.onApplicationShutdown();
    // Another replica's admin change, written straight to the shared table.
    Object.assign(f.table.rows.get('tool_a')!, { enabled: false, updated_at: new Date(T0.getTime() + 5_000) });
    expect(f.service.find('tool_a')!.enabled).toBe(true);
    f.announceFromElsewhere();
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.service.find('tool_a')!.enabled).toBe(false);
  });
});
