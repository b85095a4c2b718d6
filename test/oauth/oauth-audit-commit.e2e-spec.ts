import { DataSource } from 'typeorm';
import { signUp } from '../support/identity';
import { http, HttpResult, TestApp } from '../support/test-app';
import {
  adminRegisterClient,
  AsMetadata,
  authorizationUrl,
  authorizeInBrowser,
  grantOf,
  nativeClientMetadata,
  OAuthRig,
  pkce,
  SignInUser,
  startOAuthRig,
  tokenRequest,
  userWithTotp,
} from './oauth-kit';

/**
 * Every token the authorization server issues, refreshes, detects reused or revokes commits with
 * its audit record, in one transaction: while the audit store refuses a record (a PostgreSQL
 * trigger refusing rows of one action), the token endpoint answers an OAuth error, no usable token
 * comes out and the stored state is as it was; once the trigger is gone the same request succeeds.
 */
describe('OAuth token writes commit with their audit records (postgres)', () => {
  let rig: OAuthRig;
  let t: TestApp;
  let db: DataSource;
  let metadata: AsMetadata;
  let clientId: string;
  let user: SignInUser & { userId: string };

  beforeAll(async () => {
    rig = await startOAuthRig('postgres');
    ({ t, db, metadata } = rig);
    clientId = (await adminRegisterClient(t.baseUrl, rig.adminToken, nativeClientMetadata('Audited Host', rig.callback.redirectUri)))
      .clientId;
    user = await userWithTotp(t.baseUrl, 'audited@example.com');
  });
  afterAll(async () => {
    await rig?.close();
  });

  /** Refuses audit rows of `action` while `work` runs (a trigger raising an exception, as a full or broken audit store would). */
  async function whileAuditRefuses<T>(action: string, work: () => Promise<T>): Promise<T> {
    await db.query(`CREATE FUNCTION test_refuse_oauth_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.action = '${action}' THEN RAISE EXCEPTION 'audit store refuses ${action}'; END IF;
        RETURN NEW;
      END $$`);
    await db.query(
      `CREATE TRIGGER test_refuse_oauth_audit BEFORE INSERT ON audit_logs FOR EACH ROW EXECUTE FUNCTION test_refuse_oauth_audit()`,
    );
    try {
      return await work();
    } finally {
      await db.query('DROP TRIGGER test_refuse_oauth_audit ON audit_logs');
      await db.query('DROP FUNCTION test_refuse_oauth_audit()');
    }
  }

  /** Signs `who` in through the pages in Chromium and consents: the code and its verifier. */
  async function authorize(who: SignInUser): Promise<{ code: string; verifier: string }> {
    const challenge = pkce();
    await rig.browser.context.clearCookies();
    const page = await rig.browser.newPage();
    try {
      const url = authorizationUrl(metadata, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: rig.callback.redirectUri,
        scope: 'mcp:tools offline_access',
        resource: rig.mcpUrl,
        state: 'st-audit',
        code_challenge: challenge.challenge,
        code_challenge_method: 'S256',
      });
      const { callback } = await authorizeInBrowser(page, url, rig.callback, who);
      return { code: callback!.searchParams.get('code')!, verifier: challenge.verifier };
    } finally {
      await page.close();
    }
  }

  const exchange = (code: string, verifier: string) =>
    tokenRequest(metadata, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: rig.callback.redirectUri,
      client_id: clientId,
      code_verifier: verifier,
      resource: rig.mcpUrl,
    });
  /** The MCP endpoint's status for an initialize with the token (200: usable, 401: refused). */
  const usable = async (token: string): Promise<number> => {
    const res = await fetch(rig.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'audit-e2e', version: '1' } },
      }),
    });
    await res.text();
    return res.status;
  };
  const refresh = (refreshToken: string) =>
    tokenRequest(metadata, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, resource: rig.mcpUrl });

  /** An OAuth error body: exactly `error` and `error_description`, no stack, no token. */
  function expectOAuthError(res: HttpResult, status: number, error: string) {
    expect({ status: res.status, error: res.body.error, keys: Object.keys(res.body).sort() }).toEqual({
      status,
      error,
      keys: ['error', 'error_description'],
    });
    expect(res.headers.get('cache-control')).toBe('no-store');
  }

  const stored = async (model: string, id: string): Promise<{ consumed: boolean } | undefined> => {
    const [row]: Array<{ consumed_at: Date | null }> = await db.query(`SELECT consumed_at FROM oauth_store WHERE model = $1 AND id = $2`, [
      model,
      id,
    ]);
    return row && { consumed: row.consumed_at !== null };
  };
  /** The grant's row and its session's, as stored. */
  const grantState = async (grantId: string): Promise<{ revoked: boolean; session: string }> => {
    const [row]: Array<{ revoked_at: Date | null; status: string }> = await db.query(
      `SELECT g.revoked_at, s.status FROM oauth_grants g JOIN sessions s ON s.id = g.session_id WHERE g.grant_id = $1`,
      [grantId],
    );
    return { revoked: row.revoked_at !== null, session: row.status };
  };
  const refreshTokensOf = async (grantId: string): Promise<number> =>
    Number((await db.query(`SELECT count(*) AS n FROM oauth_store WHERE model = 'RefreshToken' AND grant_id = $1`, [grantId]))[0].n);
  const auditActions = async (grantId: string): Promise<string[]> =>
    (
      (await db.query(`SELECT action FROM audit_logs WHERE resource = $1 ORDER BY seq`, [`oauth_grant:${grantId}`])) as Array<{
        action: string;
      }>
    ).map((row) => row.action);

  it('issue, refresh and reuse detection: refused with their audit record, working again once it can be written', async () => {
    const { code, verifier } = await authorize(user);
    const grant = await grantOf(db, user.userId, clientId);

    // Issue: the code is not spent, no refresh token is stored, nothing usable comes back.
    const refusedIssue = await whileAuditRefuses('oauth.token_issued', () => exchange(code, verifier));
    expectOAuthError(refusedIssue, 500, 'server_error');
    expect(await stored('AuthorizationCode', code)).toEqual({ consumed: false });
    expect(await refreshTokensOf(grant.grantId)).toBe(0);

    const issued = await exchange(code, verifier);
    expect(issued.status).toBe(200);
    const first = { access: issued.body.access_token as string, refresh: issued.body.refresh_token as string };
    expect(await stored('AuthorizationCode', code)).toEqual({ consumed: true });
    expect(await stored('RefreshToken', first.refresh)).toEqual({ consumed: false });
    expect(await usable(first.access)).toBe(200);

    // Refresh: the old refresh token is not rotated (still unconsumed, still the only one) and keeps working.
    const refusedRefresh = await whileAuditRefuses('oauth.refresh', () => refresh(first.refresh));
    expectOAuthError(refusedRefresh, 500, 'server_error');
    expect(await stored('RefreshToken', first.refresh)).toEqual({ consumed: false });
    expect(await refreshTokensOf(grant.grantId)).toBe(1);
    expect(await usable(first.access)).toBe(200);

    const rotated = await refresh(first.refresh);
    expect(rotated.status).toBe(200);
    const second = { access: rotated.body.access_token as string, refresh: rotated.body.refresh_token as string };
    expect(second.refresh).not.toBe(first.refresh);
    expect(await stored('RefreshToken', first.refresh)).toEqual({ consumed: true });
    expect(await usable(second.access)).toBe(200);

    // The grant's session is the user's, listed by GET /sessions.
    const sessions = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${user.userId}&status=active`, { token: rig.adminToken });
    expect(sessions.body.sessions.map((s: { id: string }) => s.id)).toContain(grant.sessionId);

    // Reuse of the rotated token without its record: an OAuth error, and nothing of the revocation is written.
    const refusedReuse = await whileAuditRefuses('oauth.refresh_reuse', () => refresh(first.refresh));
    expectOAuthError(refusedReuse, 500, 'server_error');
    expect(await stored('RefreshToken', first.refresh)).toEqual({ consumed: true });
    expect(await stored('RefreshToken', second.refresh)).toEqual({ consumed: false });
    expect(await grantState(grant.grantId)).toEqual({ revoked: false, session: 'active' });
    expect(await auditActions(grant.grantId)).toEqual(['oauth.grant', 'oauth.token_issued', 'oauth.refresh']);
    expect(await usable(second.access)).toBe(200);

    // With the record written, reuse revokes the grant: its session ends and every token of it is refused.
    const reused = await refresh(first.refresh);
    expectOAuthError(reused, 400, 'invalid_grant');
    expect(await usable(second.access)).toBe(401);
    expect((await refresh(second.refresh)).status).toBe(400);
    expect(await refreshTokensOf(grant.grantId)).toBe(0);
    expect(await grantState(grant.grantId)).toEqual({ revoked: true, session: 'terminated' });
    const ended = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${user.userId}&status=active`, { token: rig.adminToken });
    expect(ended.body.sessions.map((s: { id: string }) => s.id)).not.toContain(grant.sessionId);

    expect(await auditActions(grant.grantId)).toEqual([
      'oauth.grant',
      'oauth.token_issued',
      'oauth.refresh',
      'oauth.refresh_reuse',
      'oauth.grant_revoked',
    ]);
  });

  it('revocation: refused with its audit record (the tokens keep working), effective once it can be written', async () => {
    const plain = await signUp(t, 'audited-revoke@example.com');
    const who: SignInUser = { email: 'audited-revoke@example.com' };
    const { code, verifier } = await authorize(who);
    const issued = await exchange(code, verifier);
    expect(issued.status).toBe(200);
    const tokens = { access: issued.body.access_token as string, refresh: issued.body.refresh_token as string };
    const grant = await grantOf(db, plain.userId, clientId);
    const revoke = () =>
      http(new URL(metadata.revocation_endpoint!).origin, 'POST', new URL(metadata.revocation_endpoint!).pathname, {
        raw: new URLSearchParams({ token: tokens.refresh, token_type_hint: 'refresh_token', client_id: clientId }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });

    const refused = await whileAuditRefuses('oauth.grant_revoked', revoke);
    expectOAuthError(refused, 500, 'server_error');
    expect(await stored('RefreshToken', tokens.refresh)).toEqual({ consumed: false });
    expect(await grantState(grant.grantId)).toEqual({ revoked: false, session: 'active' });
    expect(await auditActions(grant.grantId)).toEqual(['oauth.grant', 'oauth.token_issued']);
    expect(await usable(tokens.access)).toBe(200);

    const revoked = await revoke();
    expect(revoked.status).toBe(200);
    expect(await stored('RefreshToken', tokens.refresh)).toBeUndefined();
    expect(await usable(tokens.access)).toBe(401);
    expect(await grantState(grant.grantId)).toEqual({ revoked: true, session: 'terminated' });
    expect(await auditActions(grant.grantId)).toEqual(['oauth.grant', 'oauth.token_issued', 'oauth.grant_revoked']);
  });
});
