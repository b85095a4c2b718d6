import 'reflect-metadata';
import { ConfigValidationError, loadConfig, persistGeneratedSecrets, serializeError } from '@app/core';
import { DataDirectoryInUseError } from '@app/database';
import { ReadinessService } from '@app/health';
import { startTracing } from '@app/telemetry';
import { DataSource } from 'typeorm';
import { createApp } from './create-app';
import { failureLine } from './json-nest-logger';
import { displayUrl, startupSummary } from './startup-summary';
import { HttpConnections } from './http-connections';
import { version } from '../../../package.json';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, version);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  // Outside production, generated secrets are kept in DATA_DIR: MFA seeds and tokens survive a restart.
  const secrets = persistGeneratedSecrets(config);
  config = secrets.config;

  // People read stderr; stdout stays one JSON object per line for machines.
  const human = !config.isProduction;
  if (human) process.stderr.write(startupSummary({ config, persisted: secrets.persisted, secretsFile: secrets.file }));

  // Before anything else runs: off (and the SDK never loaded) unless OTEL_* configures an exporter.
  const tracing = await startTracing(process.env, {
    serviceVersion: version,
    captureDbStatements: process.env.TRACING_CAPTURE_DB_STATEMENTS?.trim().toLowerCase() === 'true',
  });
  const app = await createApp(config, { tracing });
  const logger = app.getHttpAdapter().getInstance().log;
  if (secrets.persisted.length > 0) {
    logger.warn(
      { persisted: secrets.persisted, file: secrets.file },
      'Secrets not configured (development only): generated once and kept in the data directory, mode 0600',
    );
  }
  await app.listen({ port: config.http.port, host: config.http.host });
  logger.info({ url: `http://${config.http.host}:${config.http.port}/api/v1`, docs: '/api/docs' }, 'Server listening');
  if (human) {
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.http.port;
    process.stderr.write(await readyLine(app.get(DataSource), displayUrl(config.http.host, port)));
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.http.shutdownGraceMs }, 'Shutting down');
    app.get(ReadinessService).beginShutdown();
    // Idle keep-alive clients would otherwise hold the listener's close up until their timeout.
    HttpConnections.of(app.getHttpServer())?.drain();
    const deadline = setTimeout(() => {
      logger.error('Grace period over, exiting with work in flight');
      process.exit(1);
    }, config.http.shutdownGraceMs);
    deadline.unref();
    try {
      await app.close();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'Shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** After listen: the URL again (the JSON log scrolled past the summary) and whether anyone can administer yet. */
async function readyLine(db: DataSource, url: string): Promise<string> {
  let admins: number | undefined;
  try {
    const [row] = await db.query(`SELECT count(*)::int AS n FROM users WHERE 'admin' = ANY(roles) AND status = 'active'`);
    admins = Number(row?.n);
  } catch {
    // Not worth failing a start over: the line just says less.
  }
  const hint =
    admins === 0
      ? ' No administrator yet: restart with ADMIN_EMAIL and ADMIN_PASSWORD set, or stop it and run `npm run cli -- create-admin --email you@example.com --name You`.'
      : '';
  return `Ready: ${url}/api/v1 (docs ${url}/api/docs).${hint}\n`;
}

bootstrap().catch((error: unknown) => {
  // One JSON line, whether or not the logger exists yet (the data-directory lock fails before it).
  if (error instanceof DataDirectoryInUseError) {
    process.stderr.write(failureLine(`Failed to start: ${error.message}`, { code: 'DATA_DIR_IN_USE', holder: error.holder }, version));
  } else {
    process.stderr.write(failureLine('Failed to start', { err: serializeError(error) }, version));
  }
  process.exit(1);
});
