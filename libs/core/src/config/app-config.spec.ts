import { ConfigValidationError, loadConfig } from './app-config';

describe('loadConfig', () => {
  it('starts on the embedded default with no configuration at all', () => {
    const config = loadConfig({});
    expect(config.database.url).toBeUndefined();
    expect(config.http.port).toBe(3000);
    expect(config.env).toBe('development');
    expect(config.secrets.generated).toEqual(['JWT_SECRET', 'ENCRYPTION_KEY']);
    expect(config.secrets.jwtSecret.length).toBeGreaterThanOrEqual(32);
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
    const strong = 'x'.repeat(40);
    const production = { NODE_ENV: 'production', SMS_SENDER: 'http', SMS_HTTP_URL: 'https://sms.example.com/send' };
    expect(loadConfig({ ...production, JWT_SECRET: strong, ENCRYPTION_KEY: strong }).secrets.generated).toEqual([]);
    expect(() => loadConfig({ ...production, JWT_SECRET: 'short', ENCRYPTION_KEY: strong })).toThrow(/JWT_SECRET must be at least 32/);
  });

  it('refuses the log SMS sender in production', () => {
    const strong = 'x'.repeat(40);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: strong, ENCRYPTION_KEY: strong })).toThrow(/SMS_SENDER/);
  });

  it('refuses a credentialed wildcard CORS policy', () => {
    expect(() => loadConfig({ CORS_ORIGINS: '*', CORS_CREDENTIALS: 'true' })).toThrow(/CORS_ORIGINS/);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).http.corsOrigins).toEqual([
      'https://a.example',
      'http://localhost:5173',
    ]);
  });

  it('parses TRUST_PROXY forms', () => {
    expect(loadConfig({}).http.trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).http.trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).http.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone' })).toThrow(/TRUST_PROXY/);
  });
});
