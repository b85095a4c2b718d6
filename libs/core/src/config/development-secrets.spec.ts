import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './app-config';
import { DEVELOPMENT_SECRETS_FILE, persistGeneratedSecrets } from './development-secrets';

describe('persistGeneratedSecrets', () => {
  let dataDir: string;
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'smcp-devsecrets-'))));
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps the generated secrets in DATA_DIR (0600) and gives the same ones to the next process', () => {
    const first = persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir }));
    const file = join(dataDir, DEVELOPMENT_SECRETS_FILE);
    expect(first.persisted).toEqual(['JWT_SECRET', 'ENCRYPTION_KEY', 'OAUTH_SIGNING_KEY']);
    expect(first.file).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(stored).toEqual({
      JWT_SECRET: first.config.secrets.jwtSecret,
      ENCRYPTION_KEY: first.config.secrets.encryptionKey,
      OAUTH_SIGNING_KEY: first.config.secrets.oauthSigningKey,
    });

    const second = persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir }));
    expect(second.config.secrets.jwtSecret).toBe(first.config.secrets.jwtSecret);
    expect(second.config.secrets.encryptionKey).toBe(first.config.secrets.encryptionKey);
    expect(second.config.secrets.oauthSigningKey).toBe(first.config.secrets.oauthSigningKey);
    // Still "not configured": what derives from a configured JWT_SECRET keeps its own key.
    expect(second.config.secrets.generated).toEqual(['JWT_SECRET', 'ENCRYPTION_KEY', 'OAUTH_SIGNING_KEY']);
  });

  it('never writes a configured secret, and adds a newly unconfigured one to the file', () => {
    const configured = 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA';
    const first = persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir, JWT_SECRET: configured, OAUTH_ENABLED: 'false' }));
    expect(first.persisted).toEqual(['ENCRYPTION_KEY']);
    expect(first.config.secrets.jwtSecret).toBe(configured);
    const file = join(dataDir, DEVELOPMENT_SECRETS_FILE);
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')))).toEqual(['ENCRYPTION_KEY']);

    const second = persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir, OAUTH_ENABLED: 'false' }));
    expect(second.config.secrets.encryptionKey).toBe(first.config.secrets.encryptionKey);
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8'))).sort()).toEqual(['ENCRYPTION_KEY', 'JWT_SECRET']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('does nothing when every secret is configured', () => {
    const configured = 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA';
    const result = persistGeneratedSecrets(
      loadConfig({ DATA_DIR: dataDir, JWT_SECRET: configured, ENCRYPTION_KEY: configured, OAUTH_ENABLED: 'false' }),
    );
    expect({ persisted: result.persisted, file: result.file }).toEqual({ persisted: [], file: undefined });
  });

  it('refuses a file others can read', () => {
    persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir }));
    chmodSync(join(dataDir, DEVELOPMENT_SECRETS_FILE), 0o640);
    expect(() => persistGeneratedSecrets(loadConfig({ DATA_DIR: dataDir }))).toThrow(/readable by its owner only/);
  });
});
