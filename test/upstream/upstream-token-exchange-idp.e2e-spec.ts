import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { DataSource } from 'typeorm';
import { connectHttp } from '../mcp/mcp-test-kit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { CorporateIdp, corpIdpEnv } from '../identity/corporate-idp';
import { execute, signUp, toolsEnv } from '../tools/tools-test-kit';
import { EXCHANGE_CLIENT_ID, EXCHANGE_CLIENT_SECRET, ExchangeIdp } from './exchange-idp';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';
import { seenByUpstream, startWhoami, whoamiEntry } from './whoami-kit';

const AUDIENCE = 'api://crm-idp';
const LISTING_TOKEN = 'gateway-listing-token-idp-subject';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const entry = whoamiEntry('UPSTREAM_CRMIDP_LISTING');

/**
 * Issue 17, token exchange with the caller's own IdP token as subject (`subjectToken: caller-idp`):
 * a caller who authenticated to the gateway with the enterprise IdP's access token (corporate IdP:
 * oidc-provider) gets, for the upstream, a token the exchanging IdP (oidc-provider with the RFC 8693
 * grant, trusting the corporate IdP's tokens) issued for the upstream's audience with the IdP's
 * user as subject. The caller's token itself never reaches the upstream (no passthrough), and a
 * caller who signed in otherwise has no such token to exchange.
 */
describe('Per-user upstream credentials (token exchange of the caller IdP token)', () => {
  let t: TestApp;
  let corp: CorporateIdp;
  let exchange: ExchangeIdp;
  let upstream: ReferenceUpstream;

  beforeAll(async () => {
    corp = await CorporateIdp.start();
    exchange = await ExchangeIdp.start('secure-mcp-gateway');
    upstream = await startWhoami([LISTING_TOKEN], [exchange.jwksUri, AUDIENCE]);
    const dir = mkdtempSync(join(tmpdir(), 'smcp-idp-subject-'));
    const file = writeUpstreamsFile(dir, [
      entry('crmidp', upstream.url, {
        auth: {
          mode: 'token-exchange',
          tokenEndpoint: exchange.tokenEndpoint,
          clientId: EXCHANGE_CLIENT_ID,
          clientSecret: { fromEnv: 'UPSTREAM_CRMIDP_EXCHANGE_SECRET' },
          audience: AUDIENCE,
          subjectToken: 'caller-idp',
        },
      }),
    ]);
    t = await startTestApp('postgres', {
      env: toolsEnv({
        ...corpIdpEnv(corp, { IDP_CORP_EMAIL_DOMAINS: 'corp.example' }),
        MCP_UPSTREAMS_FILE: file,
        UPSTREAM_CRMIDP_LISTING: LISTING_TOKEN,
        UPSTREAM_CRMIDP_EXCHANGE_SECRET: EXCHANGE_CLIENT_SECRET,
      }),
    });
    await corp.configure([`${t.baseUrl}/api/v1/auth/oidc/corp/callback`]);
    exchange.trustIdp(corp.issuer, `${corp.issuer}/jwks`);
    for (const sub of ['nora', 'omar']) {
      corp.accounts.set(sub, { sub, email: `${sub}@corp.example`, email_verified: true, name: sub, groups: [] });
    }
  });

  afterAll(async () => {
    await t?.close();
    upstream?.child.kill('SIGTERM');
    await exchange?.close();
    await corp?.close();
  });

  it('the upstream gets a token for its own audience whose subject is the IdP user, never the caller token', async () => {
    const [nora, omar] = [await corp.accessToken('nora'), await corp.accessToken('omar')];
    const before = (await seenByUpstream(upstream)).length;
    const answers = await waitFor('the crmidp tool in the catalogue', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/tools/crmidp.whoami/execute', { token: nora, body: { parameters: {} } });
      return res.body?.status === 'completed' ? res : undefined;
    });
    const noraToken = String(answers.body.result.structuredContent.token);
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, omar, 'modern');
    const result = (await client.callTool({ name: 'crmidp.whoami', arguments: {} })) as CallToolResult;
    await client.close();
    const omarToken = String((result.structuredContent as { token: unknown }).token);
    for (const [token, sub] of [
      [noraToken, 'nora'],
      [omarToken, 'omar'],
    ]) {
      const claims = decodeJwt(token);
      expect({ sub: claims.sub, aud: claims.aud, iss: claims.iss }).toEqual({ sub, aud: AUDIENCE, iss: exchange.issuer });
    }
    const seen = (await seenByUpstream(upstream)).slice(before);
    expect(seen).toEqual([noraToken, omarToken]);
    expect(seen.filter((token) => token === nora || token === omar || token === LISTING_TOKEN)).toEqual([]);
    expect(exchange.exchanges.map((granted, i) => [granted.sub, granted.audience, exchange.subjectTypes[i]])).toEqual([
      ['nora', AUDIENCE, ACCESS_TOKEN_TYPE],
      ['omar', AUDIENCE, ACCESS_TOKEN_TYPE],
    ]);
  });

  it('caches per subject token: the same IdP token is exchanged once, a new one again', async () => {
    const first = await corp.accessToken('nora');
    const count = () => exchange.exchanges.filter((granted) => granted.sub === 'nora').length;
    const start = count();
    for (let i = 0; i < 3; i += 1) {
      const res = await http(t.baseUrl, 'POST', '/api/v1/tools/crmidp.whoami/execute', { token: first, body: { parameters: {} } });
      expect(res.body.status).toBe('completed');
    }
    expect(count()).toBe(start + 1);
  });

  it('a caller who signed in with a gateway password has no IdP token to exchange: UPSTREAM_CREDENTIAL_REQUIRED, nothing reaches the IdP', async () => {
    const local = await signUp(t, 'pia.local@corp.example');
    const exchanged = exchange.exchanges.length;
    const res = await execute(t, local, 'crmidp.whoami', { parameters: {} });
    expect(res.body.status).toBe('failed');
    expect(res.body.error).toEqual({
      code: 'UPSTREAM_CREDENTIAL_REQUIRED',
      message:
        "Upstream crmidp acts with a token your identity provider issues in exchange for your own IdP access token: call the gateway with your identity provider's access token (not a gateway login or API key), then try again",
    });
    expect(exchange.exchanges.length).toBe(exchanged);
  });

  it('keeps no IdP or exchanged token in the database or the audit trail', async () => {
    const nora = await corp.accessToken('nora');
    const res = await http(t.baseUrl, 'POST', '/api/v1/tools/crmidp.whoami/execute', { token: nora, body: { parameters: {} } });
    const exchangedToken = String(res.body.result.structuredContent.token);
    const db = t.app.get(DataSource);
    const audit: Array<{ text: string }> = await db.query(`SELECT row_to_json(a)::text AS text FROM audit_logs a`);
    expect(audit.length).toBeGreaterThan(3);
    expect(audit.filter((row) => row.text.includes(nora) || row.text.includes(exchangedToken))).toEqual([]);
    // The executions hold what the upstream answered (whoami echoes the exchanged token), never the caller's IdP token.
    const executions: Array<{ text: string }> = await db.query(`SELECT row_to_json(e)::text AS text FROM tool_executions e`);
    expect(executions.length).toBeGreaterThan(3);
    expect(executions.filter((row) => row.text.includes(nora))).toEqual([]);
  });
});
