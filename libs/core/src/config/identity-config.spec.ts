import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigValidationError, loadConfig } from './app-config';

const BASE = { NODE_ENV: 'test', DATA_DIR: '/tmp/idp-config-spec' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
    return [];
  } catch (error) {
    if (error instanceof ConfigValidationError) return error.problems;
    throw error;
  }
}

describe('identity provider configuration', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'idp-config-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has no providers by default', () => {
    expect(loadConfig(BASE).identity).toEqual({ providers: [], requiredDomains: {}, jwksCooldownMs: 30_000 });
  });

  it('reads a provider from IDP_<NAME>_* with its defaults', () => {
    const config = loadConfig({
      ...BASE,
      IDP_PROVIDERS: 'Corp-SSO',
      IDP_CORP_SSO_ISSUER: 'https://login.example.com/tenant/v2.0',
      IDP_CORP_SSO_CLIENT_ID: 'gateway',
      IDP_CORP_SSO_CLIENT_SECRET: 's3cret',
      IDP_CORP_SSO_ROLE_MAP: '{"admins":"admin"}',
      IDP_CORP_SSO_PERMISSION_MAP: '{"auditors":["admin:audit:read"]}',
      IDP_CORP_SSO_REQUIRE_FOR_DOMAINS: 'Corp.Example',
    });
    expect(config.identity.providers).toEqual([
      {
        name: 'corp-sso',
        displayName: 'corp-sso',
        issuer: 'https://login.example.com/tenant/v2.0',
        clientId: 'gateway',
        clientSecret: 's3cret',
        scopes: ['openid', 'email', 'profile'],
        audiences: [],
        algorithms: ['RS256', 'ES256', 'PS256', 'EdDSA'],
        rolesClaim: 'groups',
        emailVerifiedClaim: 'email_verified',
        roleMap: { admins: 'admin' },
        permissionMap: { auditors: ['admin:audit:read'] },
        defaultRoles: ['user'],
        emailDomains: [],
        trustedDomains: [],
        requireForDomains: ['corp.example'],
        jit: true,
        redirectUri: undefined,
        allowHttp: false,
      },
    ]);
    expect(config.identity.requiredDomains).toEqual({ 'corp.example': 'corp-sso' });
  });

  it('reads providers from IDP_PROVIDERS_FILE, the secret from a mounted file', () => {
    const secretFile = join(dir, 'okta-secret');
    writeFileSync(secretFile, 'from-a-file\n');
    const file = join(dir, 'providers.json');
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          {
            name: 'okta',
            issuer: 'https://corp.okta.com/oauth2/default',
            clientId: 'abc',
            clientSecretFile: secretFile,
            audiences: ['api://gw'],
          },
        ],
      }),
    );
    const [okta] = loadConfig({ ...BASE, IDP_PROVIDERS_FILE: file }).identity.providers;
    expect({ name: okta.name, secret: okta.clientSecret, audiences: okta.audiences }).toEqual({
      name: 'okta',
      secret: 'from-a-file',
      audiences: ['api://gw'],
    });
  });

  it('refuses unsafe or broken settings, without echoing a secret', () => {
    const file = join(dir, 'inline-secret.json');
    writeFileSync(
      file,
      JSON.stringify({ providers: [{ name: 'g', issuer: 'https://accounts.google.com', clientId: 'x', clientSecret: 'inline-value' }] }),
    );
    const problems = problemsOf({
      IDP_PROVIDERS: 'bad',
      IDP_BAD_ISSUER: 'http://idp.example.com',
      IDP_BAD_CLIENT_ID: 'x',
      IDP_BAD_ALGORITHMS: 'RS256,HS256,none',
      IDP_BAD_ROLE_MAP: '{"g":"root"}',
      IDP_BAD_CLIENT_SECRET_FILE: join(dir, 'missing'),
      IDP_PROVIDERS_FILE: file,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'IDP_BAD_*: the issuer must be an https:// URL without credentials, query or fragment (got "http://idp.example.com")',
        'IDP_BAD_*: algorithms may only name RS256, ES256, PS256, EdDSA (got "HS256")',
        'IDP_BAD_*: algorithms may only name RS256, ES256, PS256, EdDSA (got "none")',
        'IDP_BAD_*: roleMap values must be one of admin, developer, user (got "root")',
        'IDP_BAD_CLIENT_SECRET: the client secret file must be a readable, non-empty file',
        'IDP_PROVIDERS_FILE provider "g": clientSecret must not be written in the file; use clientSecretEnv or clientSecretFile',
      ]),
    );
    expect(problems.join('\n')).not.toContain('inline-value');
  });

  it('refuses an http issuer in production even when allowed for tests', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      IDP_PROVIDERS: 'dev',
      IDP_DEV_ISSUER: 'http://127.0.0.1:9999',
      IDP_DEV_ALLOW_HTTP: 'true',
      IDP_DEV_AUDIENCES: 'api://gw',
    });
    expect(problems).toContain('IDP_DEV_*: allowHttp (an http:// issuer) is for tests only and must not be set when NODE_ENV=production');
  });

  it('needs a client id or audiences, and one provider per required domain', () => {
    const problems = problemsOf({
      IDP_PROVIDERS: 'a,b',
      IDP_A_ISSUER: 'https://a.example.com',
      IDP_B_ISSUER: 'https://b.example.com',
      IDP_B_CLIENT_ID: 'b',
      IDP_B_REQUIRE_FOR_DOMAINS: 'corp.example',
    });
    expect(problems).toContain('IDP_A_*: set clientId (sign-in through the IdP), audiences (its access tokens accepted), or both');
  });
});
