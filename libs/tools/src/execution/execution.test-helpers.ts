import type { Principal } from '@app/core';
import type { CatalogTool } from '../catalog/catalog-tool';
import type { ToolExecution } from './tool-execution';
import type { RunOutcome } from './tool-runner';

/** Test support for the execution specs (kept out of the build by tsconfig.build.json). */

export const T0 = new Date('2026-01-01T00:00:00.000Z');

export function aPrincipal(overrides: Partial<Principal> = {}): Principal {
  return {
    userId: 'usr_alice',
    email: 'alice@example.com',
    sessionId: 'ses_alice',
    roles: ['user'],
    permissions: ['tools:execute'],
    via: 'jwt',
    ...overrides,
  } as Principal;
}

export function aTool(overrides: Partial<CatalogTool> = {}): CatalogTool {
  return {
    id: 'tool_echo',
    name: 'Echo',
    description: 'echoes',
    version: '1.0.0',
    category: 'system',
    enabled: true,
    available: true,
    inputSchema: { type: 'object' },
    outputSchema: { type: 'object' },
    permissions: ['tools:execute'],
    rateLimit: { requests: 10, window: '1m' },
    rateWindowMs: 60_000,
    provider: 'builtin',
    annotations: {},
    definition: {} as CatalogTool['definition'],
    definitionHash: 'hash-echo',
    overrides: {},
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  } as CatalogTool;
}

export function anExecution(overrides: Partial<ToolExecution> = {}): ToolExecution {
  return {
    id: 'exe_1',
    toolId: 'tool_echo',
    userId: 'usr_alice',
    sessionId: 'ses_alice',
    requestId: null,
    requestHash: null,
    status: 'running',
    async: false,
    input: { message: 'hi' },
    result: null,
    error: null,
    timeoutMs: 30_000,
    ipAddress: '203.0.113.7',
    userAgent: 'spec',
    createdAt: T0,
    startedAt: T0,
    finishedAt: null,
    durationMs: null,
    attempts: 1,
    ...overrides,
  };
}

export function anOutcome(overrides: Partial<RunOutcome> = {}): RunOutcome {
  return {
    status: 'completed',
    result: { echoed: 'hi' },
    error: null,
    startedAt: T0,
    finishedAt: new Date(T0.getTime() + 40),
    durationMs: 40,
    cancelled: false,
    ...overrides,
  };
}

/** A promise with its resolve function outside (to hold a fake's answer until the test lets it go). */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
