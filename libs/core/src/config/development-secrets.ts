import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppConfig } from './app-config';

/** Where a server outside production keeps the secrets it generated (JWT_SECRET, ENCRYPTION_KEY). */
export const DEVELOPMENT_SECRETS_FILE = 'development-secrets.json';

/** The secrets this file may hold, and where each lives in the configuration. */
const PERSISTABLE = {
  JWT_SECRET: 'jwtSecret',
  ENCRYPTION_KEY: 'encryptionKey',
  OAUTH_SIGNING_KEY: 'oauthSigningKey',
} as const satisfies Record<string, keyof AppConfig['secrets']>;

export interface DevelopmentSecrets {
  config: AppConfig;
  /** The secrets now taken from (or first written to) the file; empty when none was generated. */
  persisted: string[];
  /** The file, when it was used. */
  file: string | undefined;
}

/**
 * Outside production, a secret nobody configured is generated once and kept in
 * DATA_DIR/development-secrets.json (mode 0600), so what was encrypted or signed under it — MFA
 * seeds and backup codes under ENCRYPTION_KEY, tokens under JWT_SECRET — still holds after a
 * restart on the same data directory. Configured secrets are never written; production never gets
 * here (loadConfig requires them). A file others can read is refused: whoever reads it can decrypt
 * MFA seeds and mint tokens.
 *
 * `secrets.generated` keeps naming these secrets (they were not configured), so what derives from
 * a *configured* JWT_SECRET (the development audit key) keeps its own persisted key.
 */
export function persistGeneratedSecrets(config: AppConfig): DevelopmentSecrets {
  const names = config.secrets.generated.filter((name): name is keyof typeof PERSISTABLE => name in PERSISTABLE);
  if (config.isProduction || names.length === 0) return { config, persisted: [], file: undefined };

  const file = join(config.dataDir, DEVELOPMENT_SECRETS_FILE);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const stored = readStored(file);
  const missing = names.filter((name) => typeof stored[name] !== 'string');
  if (missing.length > 0) {
    const candidate = { ...stored };
    for (const name of missing) candidate[name] = config.secrets[PERSISTABLE[name]];
    const written = writeStored(file, candidate, Object.keys(stored).length === 0);
    Object.assign(stored, written);
  }

  const secrets = { ...config.secrets };
  for (const name of names) {
    const value = stored[name];
    if (typeof value !== 'string' || value.length < 32) throw new Error(`${file} holds no usable ${name}`);
    secrets[PERSISTABLE[name]] = value;
  }
  return { config: { ...config, secrets: Object.freeze(secrets) }, persisted: names, file };
}

function readStored(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} must be readable by its owner only (chmod 600)`);
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file} is not a JSON object`);
  return parsed as Record<string, unknown>;
}

/**
 * A new file is created exclusively: of two processes starting on one fresh directory, the second
 * reads what the first wrote. Adding a key to an existing file replaces it whole (rename).
 */
function writeStored(file: string, values: Record<string, unknown>, fresh: boolean): Record<string, unknown> {
  const text = `${JSON.stringify(values, null, 2)}\n`;
  if (fresh) {
    try {
      writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
      return values;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      return { ...values, ...readStored(file) };
    }
  }
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, text, { flag: 'wx', mode: 0o600 });
  renameSync(temporary, file);
  return values;
}
