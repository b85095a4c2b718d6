import { loadConfig } from '@app/core';
import { displayUrl, startupSummary } from './startup-summary';

describe('startup summary', () => {
  it('names the URL, docs, probes, data directory, kept keys and how to create the first admin', () => {
    const config = loadConfig({ DATA_DIR: '/srv/smcp-data', PORT: '3100' }, '1.2.3');
    const text = startupSummary({
      config,
      persisted: ['JWT_SECRET', 'ENCRYPTION_KEY'],
      secretsFile: '/srv/smcp-data/development-secrets.json',
    });
    const lines = Object.fromEntries(
      text
        .split('\n')
        .slice(1)
        .filter(Boolean)
        .map((line) => [line.trim().split(/\s+/)[0], line.trim().replace(/^\S+\s+/, '')]),
    );
    expect(text.split('\n')[0]).toBe('Secure MCP Server 1.2.3 (development) starting');
    expect(lines.API).toBe('http://localhost:3100/api/v1 (this machine only; HOST=0.0.0.0 to expose it)');
    expect(lines.Docs).toBe('http://localhost:3100/api/docs');
    expect(lines.Health).toBe('http://localhost:3100/api/v1/health   ready: http://localhost:3100/api/v1/ready');
    expect(lines.Data).toBe('/srv/smcp-data (embedded PostgreSQL, kept across restarts)');
    expect(lines.Keys).toBe('JWT_SECRET, ENCRYPTION_KEY generated once and kept in /srv/smcp-data/development-secrets.json (mode 0600)');
    expect(lines.Admin).toMatch(
      /^none configured: set ADMIN_EMAIL and ADMIN_PASSWORD, or stop the server and run `npm run cli -- create-admin/,
    );
  });

  it('says which keys came from the environment and which admin is bootstrapped', () => {
    const config = loadConfig({
      JWT_SECRET: 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA',
      ADMIN_EMAIL: 'Ops@Example.com',
      ADMIN_PASSWORD: 'x',
      HOST: '0.0.0.0',
    });
    const text = startupSummary({ config, persisted: ['ENCRYPTION_KEY'], secretsFile: '/d/development-secrets.json' });
    const keys = text.split('\n').find((line) => line.trim().startsWith('Keys'));
    const admin = text.split('\n').find((line) => line.trim().startsWith('Admin'));
    const api = text.split('\n').find((line) => line.trim().startsWith('API'));
    expect(keys?.trim()).toBe(
      'Keys      ENCRYPTION_KEY generated once and kept in /d/development-secrets.json (mode 0600); JWT_SECRET from the environment',
    );
    expect(admin?.trim()).toBe('Admin     ADMIN_EMAIL=ops@example.com (created at start if missing)');
    expect(api?.trim()).toBe('API       http://localhost:3000/api/v1');
  });

  it('shows other hosts as they are, IPv6 in brackets', () => {
    expect(displayUrl('10.1.2.3', 8080)).toBe('http://10.1.2.3:8080');
    expect(displayUrl('fd00::1', 80)).toBe('http://[fd00::1]:80');
  });
});
