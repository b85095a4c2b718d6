import { DynamicModule, Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectDefaultMetrics, register } from 'prom-client';
import { AppConfig, loadConfig } from '@app/core';
import { createApp } from '../../apps/server/src/create-app';
import { createTestDatabase, TestDatabase } from './test-database';

export type DatabaseKind = 'postgres' | 'embedded';

/** Every end-to-end suite runs against both: the machine's PostgreSQL and the embedded default. */
export const DATABASE_KINDS: DatabaseKind[] = ['postgres', 'embedded'];

export interface TestApp {
  app: NestFastifyApplication;
  config: AppConfig;
  baseUrl: string;
  dataDir: string;
  database?: TestDatabase;
  /** Stops the server, keeping the data (for restart tests). */
  stop(): Promise<void>;
  /** Stops the server and deletes the data. */
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  extraModules?: Array<Type | DynamicModule>;
  /** Reuse the data of an earlier run (restart). */
  reuse?: Pick<TestApp, 'dataDir' | 'database'>;
  /**
   * What a new database holds when the server starts. 'migrated' (the default): every migration
   * already applied — a copy of a migrated template, as a built server's embedded database starts
   * and as any server finds its database on a second start; the server still runs its migration
   * step (nothing pending). 'empty': a database no migration has touched, for suites about
   * migrating; the default whenever the env sets RUN_MIGRATIONS or DATABASE_MIGRATION_URL.
   */
  schema?: 'empty' | 'migrated';
}

export async function startTestApp(kind: DatabaseKind, options: StartOptions = {}): Promise<TestApp> {
  const schema =
    options.schema ?? (options.env?.RUN_MIGRATIONS !== undefined || options.env?.DATABASE_MIGRATION_URL ? 'empty' : 'migrated');
  const dataDir = options.reuse?.dataDir || mkdtempSync(join(tmpdir(), 'smcp-'));
  const database = kind === 'postgres' ? (options.reuse?.database ?? (await createTestDatabase('smcp', { schema }))) : undefined;
  // The embedded server copies the migrated template into a new data directory (see
  // pglite-template.ts); an empty one is initdb'd here first, so the server finds data without migrations.
  if (kind === 'embedded' && !options.reuse && schema === 'empty') await initEmptyEmbedded(dataDir);
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      ...(database ? { DATABASE_URL: database.url } : {}),
      ...options.env,
    },
    'test',
  );
  // prom-client's default registry is process-wide; each app in this process starts it afresh.
  // (PrometheusModule starts the default collectors once, when it is imported).
  register.clear();
  collectDefaultMetrics();
  const app = await createApp(config, { extraModules: options.extraModules });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.close();
  };
  return {
    app,
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    dataDir,
    database,
    stop,
    close: async () => {
      await stop();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function initEmptyEmbedded(dataDir: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(join(dataDir, 'pglite'));
  await db.close();
}

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A small fetch wrapper: JSON in, JSON (or text) out, never throws on status. */
export async function http<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}
