import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigValidationError, loadConfig, secretWeakness } from './app-config';

/** A random-looking audit key, as production needs one. */
const AUDIT_KEY = 'q8Vd2Lk9Zp4Wn7Rt1Yx6Bc3Hf5Jm0Gs8Ua2Ke';

/** What production needs besides its secrets: a real SMS sender and the audit key. */
function productionEnv(): Record<string, string> {
  return { NODE_ENV: 'production', SMS_SENDER: 'http', SMS_HTTP_URL: 'https://sms.example.com/send', AUDIT_HMAC_KEY: AUDIT_KEY };
}

describe('loadConfig', () => {
  it('starts on the embedded default with no configuration at all', () => {
    const config = loadConfig({});
    expect(config.database.url).toBeUndefined();
    expect(config.http.port).toBe(3000);
    expect(config.env).toBe('development');
    expect(config.secrets.generated).toEqual(['JWT_SECRET', 'ENCRYPTION_KEY', 'OAUTH_SIGNING_KEY']);
    expect(config.secrets.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(config.oauth).toMatchObject({ enabled: true, issuer: undefined, dynamicRegistration: false });
    expect(config.secrets.oauthSigningKey).toContain('BEGIN PRIVATE KEY');
  });

  describe('the OAuth authorization server', () => {
    const strong = randomBytes(48).toString('base64');
    const production = { ...productionEnv(), JWT_SECRET: strong, ENCRYPTION_KEY: strong };
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

    it('is off in production unless an issuer is configured, and then needs a signing key', () => {
      expect(loadConfig(production).oauth.enabled).toBe(false);
      expect(() => loadConfig({ ...production, OAUTH_ISSUER: 'https://gw.example.com' })).toThrow(/OAUTH_SIGNING_KEY/);
      const on = loadConfig({ ...production, OAUTH_ISSUER: 'https://gw.example.com/', OAUTH_SIGNING_KEY: pem });
      expect(on.oauth).toMatchObject({ enabled: true, issuer: 'https://gw.example.com' });
      expect(() => loadConfig({ ...production, OAUTH_ENABLED: 'true' })).toThrow(/OAUTH_ISSUER is required/);
    });

    it('refuses issuers with a path, http in production, weak keys and unknown CIMD scopes', () => {
      expect(() => loadConfig({ OAUTH_ISSUER: 'https://gw.example.com/oauth' })).toThrow(/origin/);
      expect(() => loadConfig({ ...production, OAUTH_ISSUER: 'http://gw.example.com', OAUTH_SIGNING_KEY: pem })).toThrow(/OAUTH_ISSUER/);
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      expect(() => loadConfig({ OAUTH_SIGNING_KEY: weak })).toThrow(/EC P-256 or an RSA/);
      expect(() => loadConfig({ OAUTH_SIGNING_KEY: 'not a key' })).toThrow(/PEM-encoded/);
      expect(() => loadConfig({ OAUTH_CIMD_SCOPES: 'admin' })).toThrow(/OAUTH_CIMD_SCOPES/);
      expect(() => loadConfig({ OAUTH_CIMD_ALLOWED_HOSTS: 'https://x' })).toThrow(/OAUTH_CIMD_ALLOWED_HOSTS/);
      expect(() => loadConfig({ ...production, OAUTH_CIMD_ALLOW_PRIVATE: 'true' })).toThrow(/tests only/);
      expect(loadConfig({ OAUTH_CIMD_ALLOWED_HOSTS: '*.Vendor.io, app.example.com' }).oauth.cimd.allowedHosts).toEqual([
        '*.vendor.io',
        'app.example.com',
      ]);
    });
  });

  it('listens on loopback outside production and on every interface in production, unless HOST says otherwise', () => {
    const strong = randomBytes(48).toString('base64');
    const production = {
      NODE_ENV: 'production',
      SMS_SENDER: 'http',
      SMS_HTTP_URL: 'https://sms.example.com/send',
      AUDIT_HMAC_KEY: AUDIT_KEY,
    };
    expect(loadConfig({}).http.host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).http.host).toBe('127.0.0.1');
    expect(loadConfig({ ...production, JWT_SECRET: strong, ENCRYPTION_KEY: strong }).http.host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).http.host).toBe('0.0.0.0');
  });

  it('names every bad variable', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://u:hunter2@x/db', BODY_LIMIT: '-1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    expect(message).toContain('PORT');
    expect(message).toContain('LOG_LEVEL');
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain('BODY_LIMIT');
    expect(message).not.toContain('hunter2');
  });

  it('refuses to invent secrets in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET is required.*\n.*ENCRYPTION_KEY is required/);
  });

  it('accepts configured secrets in production and rejects short ones', () => {
    const strong = 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA';
    const production = {
      NODE_ENV: 'production',
      SMS_SENDER: 'http',
      SMS_HTTP_URL: 'https://sms.example.com/send',
      AUDIT_HMAC_KEY: AUDIT_KEY,
    };
    expect(loadConfig({ ...production, JWT_SECRET: strong, ENCRYPTION_KEY: strong }).secrets.generated).toEqual([]);
    expect(() => loadConfig({ ...production, JWT_SECRET: 'short', ENCRYPTION_KEY: strong })).toThrow(/JWT_SECRET must be at least 32/);
  });

  it.each([
    ['one repeated character', 'j'.repeat(48)],
    ['too few distinct characters', 'abcabcabcaabbccabcabcbbacabcacbacbacb'],
    ['a short pattern repeated', 'Passw0rd!1Passw0rd!1Passw0rd!1Passw0rd!1'],
    ['an alphabet run', 'abcdefghijklmnopqrstuvwxyz0123456789'],
    ['low estimated entropy', 'aaaaaaaaaaaaaaaaaaaaaaaabcdefghij1'],
  ])('refuses a production JWT_SECRET or ENCRYPTION_KEY with %s, without echoing it', (_why, weak) => {
    const production = { NODE_ENV: 'production', SMS_SENDER: 'http', SMS_HTTP_URL: 'https://sms.example.com/send' };
    const strong = randomBytes(48).toString('base64');
    for (const name of ['JWT_SECRET', 'ENCRYPTION_KEY']) {
      let message = '';
      try {
        loadConfig({ ...production, JWT_SECRET: strong, ENCRYPTION_KEY: strong, [name]: weak });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(new RegExp(`${name} is too easy to guess`));
      expect(message).not.toContain(weak);
    }
    // Outside production the same value is only a development convenience.
    expect(loadConfig({ NODE_ENV: 'test', JWT_SECRET: weak, ENCRYPTION_KEY: weak }).secrets.jwtSecret).toBe(weak);
  });

  it('accepts generated secrets of the usual shapes', () => {
    for (let i = 0; i < 50; i++) {
      for (const secret of [
        randomBytes(16).toString('hex'),
        randomBytes(32).toString('hex'),
        randomBytes(48).toString('base64'),
        randomBytes(24).toString('base64url'),
      ]) {
        expect(secretWeakness(secret)).toBeNull();
      }
    }
  });

  it('refuses the log SMS sender in production', () => {
    const strong = randomBytes(48).toString('base64');
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: strong, ENCRYPTION_KEY: strong })).toThrow(/SMS_SENDER/);
  });

  it('refuses a credentialed wildcard CORS policy', () => {
    expect(() => loadConfig({ CORS_ORIGINS: '*', CORS_CREDENTIALS: 'true' })).toThrow(/CORS_ORIGINS/);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).http.corsOrigins).toEqual([
      'https://a.example',
      'http://localhost:5173',
    ]);
  });

  it('reads Redis: off by default, a redis(s) URL never echoed, a key prefix', () => {
    expect(loadConfig({}).redisUrl).toBeUndefined();
    expect(loadConfig({}).redisKeyPrefix).toBe('smcp:');
    const config = loadConfig({ REDIS_URL: 'rediss://:s3cret@cache.internal:6380/0', REDIS_KEY_PREFIX: 'prod-eu:' });
    expect(config.redisUrl).toBe('rediss://:s3cret@cache.internal:6380/0');
    expect(config.redisKeyPrefix).toBe('prod-eu:');
    expect(() => loadConfig({ REDIS_URL: 'http://:s3cret@cache.internal' })).toThrow(/REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: 'http://:s3cret@cache.internal' })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ REDIS_KEY_PREFIX: 'has space' })).toThrow(/REDIS_KEY_PREFIX/);
  });

  it('reads the Redis breaker timings: 1 s each by default, bounded', () => {
    expect(loadConfig({}).redisBreaker).toEqual({ commandTimeoutMs: 1_000, heartbeatMs: 1_000, probeTimeoutMs: 1_000 });
    expect(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '250', REDIS_HEARTBEAT_MS: '500', REDIS_PROBE_TIMEOUT_MS: '300' }).redisBreaker).toEqual({
      commandTimeoutMs: 250,
      heartbeatMs: 500,
      probeTimeoutMs: 300,
    });
    expect(() => loadConfig({ REDIS_HEARTBEAT_MS: '0' })).toThrow(/REDIS_HEARTBEAT_MS/);
    expect(() => loadConfig({ REDIS_PROBE_TIMEOUT_MS: 'soon' })).toThrow(/REDIS_PROBE_TIMEOUT_MS/);
  });

  it('reads the PostgreSQL breaker timings: heartbeat 1 s, probe timeout 2 s by default, bounded', () => {
    const { heartbeatMs, probeTimeoutMs } = loadConfig({}).database;
    expect({ heartbeatMs, probeTimeoutMs }).toEqual({ heartbeatMs: 1_000, probeTimeoutMs: 2_000 });
    const set = loadConfig({ DATABASE_HEARTBEAT_MS: '250', DATABASE_PROBE_TIMEOUT_MS: '400' }).database;
    expect({ heartbeatMs: set.heartbeatMs, probeTimeoutMs: set.probeTimeoutMs }).toEqual({ heartbeatMs: 250, probeTimeoutMs: 400 });
    expect(() => loadConfig({ DATABASE_HEARTBEAT_MS: '50' })).toThrow(/DATABASE_HEARTBEAT_MS/);
    expect(() => loadConfig({ DATABASE_PROBE_TIMEOUT_MS: 'soon' })).toThrow(/DATABASE_PROBE_TIMEOUT_MS/);
  });

  it('parses TRUST_PROXY forms', () => {
    expect(loadConfig({}).http.trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).http.trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).http.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone' })).toThrow(/TRUST_PROXY/);
  });

  it('bounds slow clients by default, keeps idle connections longer than a proxy does, and orders the deadlines', () => {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = loadConfig({}).http;
    expect({ headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs }).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 75_000,
    });
    expect(
      loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_KEEP_ALIVE_TIMEOUT_MS: '700' }).http,
    ).toMatchObject({
      headersTimeoutMs: 500,
      requestTimeoutMs: 2_000,
      keepAliveTimeoutMs: 700,
    });
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '2000' })).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '0' })).toThrow(/HTTP_KEEP_ALIVE_TIMEOUT_MS/);
  });
  describe('tools', () => {
    it('has safe defaults: sandbox under DATA_DIR, 1 MiB limits, no host allowed, no private addresses', () => {
      const tools = loadConfig({ DATA_DIR: '/srv/mcp' }).tools;
      expect(tools).toEqual({
        sandboxRoot: join('/srv/mcp', 'sandbox'),
        fsMaxReadBytes: 1024 * 1024,
        httpAllowedHosts: [],
        httpMaxBytes: 1024 * 1024,
        httpTimeoutMs: 10_000,
        httpAllowPrivate: false,
        maxTimeoutMs: 60_000,
        defaultTimeoutMs: 30_000,
      });
      expect(loadConfig({}).tools.sandboxRoot).toBe(resolve('./data/sandbox'));
    });

    it('reads every variable', () => {
      const tools = loadConfig({
        TOOLS_SANDBOX_ROOT: './files',
        TOOLS_FS_MAX_READ_BYTES: '2048',
        TOOLS_HTTP_ALLOWED_HOSTS: 'api.example.com, *.Example.ORG, 127.0.0.1, [::1], bücher.de',
        TOOLS_HTTP_MAX_BYTES: '4096',
        TOOLS_HTTP_TIMEOUT_MS: '2500',
        TOOLS_HTTP_ALLOW_PRIVATE: 'true',
        TOOLS_MAX_TIMEOUT_MS: '120000',
        TOOLS_DEFAULT_TIMEOUT_MS: '5000',
      }).tools;
      expect(tools).toEqual({
        sandboxRoot: resolve('./files'),
        fsMaxReadBytes: 2048,
        httpAllowedHosts: ['api.example.com', '*.example.org', '127.0.0.1', '[::1]', 'xn--bcher-kva.de'],
        httpMaxBytes: 4096,
        httpTimeoutMs: 2500,
        httpAllowPrivate: true,
        maxTimeoutMs: 120_000,
        defaultTimeoutMs: 5000,
      });
    });

    it('names bad tool variables', () => {
      let error: unknown;
      try {
        loadConfig({
          TOOLS_FS_MAX_READ_BYTES: '0',
          TOOLS_HTTP_MAX_BYTES: 'lots',
          TOOLS_HTTP_TIMEOUT_MS: '-5',
          TOOLS_HTTP_ALLOW_PRIVATE: 'maybe',
          TOOLS_MAX_TIMEOUT_MS: '1000',
          TOOLS_DEFAULT_TIMEOUT_MS: '2000',
        });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigValidationError);
      const problems = (error as ConfigValidationError).problems.join('\n');
      for (const name of ['TOOLS_FS_MAX_READ_BYTES', 'TOOLS_HTTP_MAX_BYTES', 'TOOLS_HTTP_TIMEOUT_MS', 'TOOLS_HTTP_ALLOW_PRIVATE']) {
        expect(problems).toContain(name);
      }
      expect(problems).toContain('TOOLS_DEFAULT_TIMEOUT_MS must not exceed TOOLS_MAX_TIMEOUT_MS');
    });

    it('refuses malformed or over-broad allowed hosts', () => {
      for (const bad of ['http://api.example.com', 'api.example.com/path', 'user@host', '*.com', '*.10.0.0', '*.[::1]', 'a b']) {
        expect(() => loadConfig({ TOOLS_HTTP_ALLOWED_HOSTS: bad })).toThrow(/TOOLS_HTTP_ALLOWED_HOSTS/);
      }
    });

    it('refuses the file system root as sandbox and private fetches in production', () => {
      expect(() => loadConfig({ TOOLS_SANDBOX_ROOT: '/' })).toThrow(/TOOLS_SANDBOX_ROOT/);
      const strong = randomBytes(48).toString('base64');
      const production = {
        NODE_ENV: 'production',
        SMS_SENDER: 'http',
        SMS_HTTP_URL: 'https://sms.example.com/send',
        JWT_SECRET: strong,
        ENCRYPTION_KEY: strong,
        AUDIT_HMAC_KEY: AUDIT_KEY,
      };
      expect(() => loadConfig({ ...production, TOOLS_HTTP_ALLOW_PRIVATE: 'true' })).toThrow(/TOOLS_HTTP_ALLOW_PRIVATE/);
      expect(loadConfig(production).tools.httpAllowPrivate).toBe(false);
    });
  });

  describe('audit export', () => {
    const SECRET = 'sK4n8Qw2Zt6Lp0Vx3Rb7Ym1Hc5Jd9Gf2Ua8Ne';
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'smcp-config-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('is off by default, with bounded defaults for when a sink is configured', () => {
      expect(loadConfig({}).auditExport).toEqual({
        webhookUrl: undefined,
        webhookSecret: undefined,
        webhookTimeoutMs: 10_000,
        file: undefined,
        batchSize: 100,
        intervalMs: 1_000,
        retryBaseMs: 1_000,
        retryMaxMs: 60_000,
        checkpointIntervalMs: 300_000,
      });
    });

    it('reads every variable, the secret from a file too', () => {
      const secretFile = join(dir, 'secret');
      writeFileSync(secretFile, `${SECRET}\n`);
      const config = loadConfig({
        AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com/ingest',
        AUDIT_EXPORT_WEBHOOK_SECRET_FILE: secretFile,
        AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS: '2500',
        AUDIT_EXPORT_FILE: join(dir, 'audit.jsonl'),
        AUDIT_EXPORT_BATCH_SIZE: '50',
        AUDIT_EXPORT_INTERVAL_MS: '250',
        AUDIT_EXPORT_RETRY_BASE_MS: '100',
        AUDIT_EXPORT_RETRY_MAX_MS: '5000',
        AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '0',
      }).auditExport;
      expect(config).toEqual({
        webhookUrl: 'https://siem.example.com/ingest',
        webhookSecret: SECRET,
        webhookTimeoutMs: 2500,
        file: join(dir, 'audit.jsonl'),
        batchSize: 50,
        intervalMs: 250,
        retryBaseMs: 100,
        retryMaxMs: 5000,
        checkpointIntervalMs: 0,
      });
      expect(
        loadConfig({ AUDIT_EXPORT_WEBHOOK_URL: 'http://127.0.0.1:9/x', AUDIT_EXPORT_WEBHOOK_SECRET: SECRET }).auditExport.webhookSecret,
      ).toBe(SECRET);
    });

    it('names each bad value without echoing secrets', () => {
      const refused = (env: Record<string, string>, problem: RegExp) => {
        let error: unknown;
        try {
          loadConfig(env);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ConfigValidationError);
        expect((error as Error).message).toMatch(problem);
        return (error as Error).message;
      };
      refused({ AUDIT_EXPORT_WEBHOOK_URL: 'ftp://siem.example.com' }, /AUDIT_EXPORT_WEBHOOK_URL must be a URL/);
      const message = refused({ AUDIT_EXPORT_WEBHOOK_URL: 'https://user:hunter2@siem.example.com' }, /must not carry credentials/);
      expect(message).not.toContain('hunter2');
      expect(
        refused({ AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com', AUDIT_EXPORT_WEBHOOK_SECRET: 'short-secret' }, /at least 32/),
      ).not.toContain('short-secret');
      refused(
        { AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com', AUDIT_EXPORT_WEBHOOK_SECRET_FILE: join(dir, 'missing') },
        /readable file/,
      );
      refused(
        {
          AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com',
          AUDIT_EXPORT_WEBHOOK_SECRET: SECRET,
          AUDIT_EXPORT_WEBHOOK_SECRET_FILE: join(dir, 'x'),
        },
        /not both/,
      );
      refused({ AUDIT_EXPORT_WEBHOOK_SECRET: SECRET }, /needs AUDIT_EXPORT_WEBHOOK_URL/);
      refused({ AUDIT_EXPORT_FILE: join(dir, 'no-such-dir', 'audit.jsonl') }, /existing directory/);
      refused({ AUDIT_EXPORT_FILE: dir }, /regular file/);
      refused({ AUDIT_EXPORT_BATCH_SIZE: '0' }, /AUDIT_EXPORT_BATCH_SIZE/);
      refused({ AUDIT_EXPORT_RETRY_BASE_MS: '5000', AUDIT_EXPORT_RETRY_MAX_MS: '1000' }, /must not exceed/);
    });

    it('wants https in production', () => {
      const strong = randomBytes(48).toString('base64');
      const production = {
        NODE_ENV: 'production',
        SMS_SENDER: 'http',
        SMS_HTTP_URL: 'https://sms.example.com/send',
        JWT_SECRET: strong,
        ENCRYPTION_KEY: strong,
        AUDIT_HMAC_KEY: AUDIT_KEY,
      };
      expect(() => loadConfig({ ...production, AUDIT_EXPORT_WEBHOOK_URL: 'http://siem.example.com' })).toThrow(/https:\/\//);
      expect(loadConfig({ ...production, AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com' }).auditExport.webhookUrl).toBe(
        'https://siem.example.com',
      );
    });
  });
});
