import type { AppConfig } from '@app/core';

export interface StartupFacts {
  config: AppConfig;
  /** Secrets taken from (or first written to) the data directory's key file, and that file. */
  persisted: string[];
  secretsFile: string | undefined;
}

/** What a person types into a browser: loopback and wildcard binds are reachable as localhost. */
export function displayUrl(host: string, port: number): string {
  const local = ['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost'].includes(host);
  const name = local ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/**
 * The few lines a person starting a development server needs, before the JSON log: where it
 * listens, where the docs and probes are, where the data and keys live, and how to get an admin.
 * Written to stderr, so stdout stays one JSON object per line for machines.
 */
export function startupSummary({ config, persisted, secretsFile }: StartupFacts): string {
  const url = displayUrl(config.http.host, config.http.port);
  const configured = ['JWT_SECRET', 'ENCRYPTION_KEY'].filter((name) => !config.secrets.generated.includes(name));
  const keys =
    persisted.length > 0
      ? `${persisted.join(', ')} generated once and kept in ${secretsFile} (mode 0600)` +
        (configured.length > 0 ? `; ${configured.join(', ')} from the environment` : '')
      : 'from the environment';
  const database = config.database.url ? 'database: PostgreSQL at DATABASE_URL' : 'embedded PostgreSQL, kept across restarts';
  const admin = config.auth.adminEmail
    ? `ADMIN_EMAIL=${config.auth.adminEmail} (created at start if missing)`
    : 'none configured: set ADMIN_EMAIL and ADMIN_PASSWORD, or stop the server and run ' +
      '`npm run cli -- create-admin --email you@example.com --name You`';
  const listen =
    config.http.host === '127.0.0.1' || config.http.host === '::1' || config.http.host === 'localhost'
      ? ' (this machine only; HOST=0.0.0.0 to expose it)'
      : '';
  return [
    `Secure MCP Server ${config.version} (${config.env}) starting`,
    `  API       ${url}/api/v1${listen}`,
    `  Docs      ${url}/api/docs`,
    `  Health    ${url}/api/v1/health   ready: ${url}/api/v1/ready`,
    `  Data      ${config.dataDir} (${database})`,
    `  Keys      ${keys}`,
    `  Admin     ${admin}`,
    `  Logs      JSON on stdout (LOG_PRETTY=true for humans)`,
    '',
  ].join('\n');
}
