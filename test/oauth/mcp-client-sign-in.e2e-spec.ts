import { auth, Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { DataSource } from 'typeorm';
import { HeadlessBrowser } from '../support/browser';
import { DATABASE_KINDS, http, TestApp } from '../support/test-app';
import {
  adminRegisterClient,
  AsMetadata,
  bearerStatus,
  claimsOf,
  Era,
  ERAS,
  grantOf,
  mcpClient,
  overWebSocket,
  wwwAuthenticate,
  authorizeInBrowser,
  AuthorizeOptions,
  CallbackServer,
  ClientMetadataHost,
  MemoryOAuthProvider,
  nativeClientMetadata,
  OAuthRig,
  PageKind,
  restToken,
  SignInUser,
  startOAuthRig,
  tokenRequest,
  userWithTotp,
} from './oauth-kit';

/**
 * Done-when of issue 16: a real MCP client signs in from nothing. The official SDK v2 client, with
 * its own OAuth support, meets a bare 401 on /api/v1/mcp, discovers our authorization server
 * (RFC 9728 → RFC 8414), identifies itself (Client ID Metadata Document, dynamic registration,
 * pre-registered client), sends the user through the sign-in page in headless Chromium (password,
 * TOTP, consent), gets tokens, lists and calls tools, refreshes, and is refused once an admin
 * revokes the grant or terminates its session. Both protocol eras.
 */
describe.each(DATABASE_KINDS)('an MCP client signs in by OAuth (%s)', (kind) => {
  let rig: OAuthRig;
  let t: TestApp;
  let db: DataSource;
  let documents: ClientMetadataHost;
  let callback: CallbackServer;
  let browser: HeadlessBrowser;
  let metadata: AsMetadata;
  let adminToken: string;
  let mcpUrl: string;
  const open: Client[] = [];

  beforeAll(async () => {
    rig = await startOAuthRig(kind, { OAUTH_DYNAMIC_REGISTRATION: 'true' });
    ({ t, db, documents, callback, browser, metadata, adminToken, mcpUrl } = rig);
  });
  afterAll(async () => {
    for (const client of open) await client.close().catch(() => undefined);
    await rig?.close();
  });

  /**
   * What a host does: connect with its OAuth provider; on the 401 the SDK discovers, identifies the
   * client and asks to send the user to the authorization URL (UnauthorizedError); the user signs
   * in and consents in the browser; the host finishes with the callback and connects again.
   */
  async function signIn(
    provider: MemoryOAuthProvider,
    era: Era,
    user: SignInUser,
    inspect?: AuthorizeOptions['inspect'],
  ): Promise<{ client: Client; callbackUrl: URL; visited: PageKind[] }> {
    const url = mcpUrl;
    const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    const refused = mcpClient(era);
    const failure = await refused
      .connect(first)
      .then(() => refused.listTools())
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(UnauthorizedError);
    await refused.close().catch(() => undefined);

    // Each test's user signs in on a browser with no session of another user.
    await browser.context.clearCookies();
    const page = await browser.newPage();
    const { callback: back, visited } = await authorizeInBrowser(page, provider.lastAuthorizationUrl.href, callback, user, { inspect });
    await page.close();
    if (!back?.searchParams.get('code')) throw new Error(`no code in the callback: ${back?.href} after ${visited.join(' → ')}`);
    await first.finishAuth(back.searchParams);

    const client = mcpClient(era);
    open.push(client);
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
    return { client, callbackUrl: back, visited };
  }

  async function listsAndCalls(client: Client, era: Era): Promise<void> {
    expect(client.getProtocolEra()).toBe(era);
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toEqual(expect.arrayContaining(['tool_echo']));
    const result = await client.callTool({ name: 'tool_echo', arguments: { message: `signed in (${era})` } });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ message: `signed in (${era})` });
  }

  it('a bare 401 on /api/v1/mcp leads to our authorization server (RFC 9728, RFC 8414)', async () => {
    const bare = await fetch(mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    await bare.text();
    expect(bare.status).toBe(401);
    const challenge = wwwAuthenticate(bare.headers.get('www-authenticate'));
    expect(challenge.scheme).toBe('Bearer');
    expect(challenge.params.scope?.split(' ')).toEqual(expect.arrayContaining(['mcp:tools']));
    const resourceMetadataUrl = challenge.params.resource_metadata;
    expect(resourceMetadataUrl).toEqual(expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource/));

    const prm = await fetch(resourceMetadataUrl);
    expect(prm.status).toBe(200);
    const resource = (await prm.json()) as { resource: string; authorization_servers: string[]; scopes_supported?: string[] };
    expect(resource.authorization_servers).toEqual([metadata.issuer]);

    const specific = await http(t.baseUrl, 'GET', '/.well-known/oauth-protected-resource/api/v1/mcp');
    expect(specific.status).toBe(200);
    expect(specific.body.resource).toBe(mcpUrl);
    expect(specific.body.authorization_servers).toEqual([metadata.issuer]);

    expect(metadata.issuer).toBe(t.baseUrl);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.response_types_supported).toEqual(['code']);
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['mcp:tools', 'offline_access']));
    expect(metadata.registration_endpoint).toEqual(expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//));
  });

  describe.each(ERAS)('%s era', (era) => {
    it('identified by a Client ID Metadata Document: signs in with password + TOTP and consent, calls tools, refreshes; refused once an admin revokes the grant', async () => {
      const user = await userWithTotp(t.baseUrl, `cimd-${era}-${kind}@example.com`);
      const documentPath = `/clients/${era}/client.json`;
      const clientId = documents.url(documentPath);
      const clientMetadata = nativeClientMetadata(`CIMD client (${era})`, callback.redirectUri);
      documents.publish(documentPath, { client_id: clientId, ...clientMetadata });
      const provider = new MemoryOAuthProvider(clientMetadata, { clientMetadataUrl: clientId });

      const shown: Record<string, string> = {};
      const { client, callbackUrl, visited } = await signIn(provider, era, user, async (kind, page) => {
        shown[kind] = await page.locator('main, body').first().innerText();
      });
      // A fresh browser: the sign-in page, the second factor, then consent naming the client, scope and endpoint.
      expect(visited).toEqual(['sign-in', 'mfa', 'consent', 'callback']);
      expect(shown.consent).toEqual(expect.stringContaining(`CIMD client (${era})`));
      expect(shown.consent).toEqual(expect.stringContaining('mcp:tools'));
      expect(shown.consent).toEqual(expect.stringContaining(mcpUrl));
      expect(shown.consent).toEqual(expect.stringContaining(user.email));
      // The request the SDK built: this client, PKCE S256, the endpoint as resource, our scopes.
      const request = provider.lastAuthorizationUrl.searchParams;
      expect(request.get('client_id')).toBe(clientId);
      expect(request.get('code_challenge_method')).toBe('S256');
      expect(request.get('resource')).toBe(mcpUrl);
      expect(request.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['mcp:tools']));
      // RFC 9207: the response names the issuer; the document was fetched.
      expect(callbackUrl.searchParams.get('iss')).toBe(metadata.issuer);
      expect(documents.hitsOf(documentPath)).toBeGreaterThan(0);

      const tokens = provider.tokens();
      expect(tokens?.token_type.toLowerCase()).toBe('bearer');
      expect(tokens?.access_token).toEqual(expect.any(String));
      expect(tokens?.refresh_token).toEqual(expect.any(String));
      await listsAndCalls(client, era);

      // Refresh through the SDK (auth() with a refresh token rotates it).
      const before = tokens!;
      expect(await auth(provider, { serverUrl: mcpUrl })).toBe('AUTHORIZED');
      const after = provider.tokens()!;
      expect(after.access_token).not.toBe(before.access_token);
      expect(after.refresh_token).toEqual(expect.any(String));
      expect(after.refresh_token).not.toBe(before.refresh_token);
      const again = mcpClient(era);
      open.push(again);
      await again.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
      await listsAndCalls(again, era);

      // The user sees the grant (REST extension), with its session; an administrator revokes it.
      const rest = await restToken(t.baseUrl, user);
      const listed = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: rest });
      expect(listed.status).toBe(200);
      const grant = await grantOf(db, user.userId, clientId);
      const mine = listed.body.grants.find((g: { id: string }) => g.id === grant.grantId);
      expect(mine).toMatchObject({ clientId, status: 'active', resources: [mcpUrl], sessionId: grant.sessionId });
      expect(mine.scopes).toEqual(expect.arrayContaining(['mcp:tools']));
      const adminRevoke = `/api/v1/admin/oauth/grants/${encodeURIComponent(grant.grantId)}`;
      expect((await http(t.baseUrl, 'DELETE', adminRevoke, { token: rest })).status).toBe(403);
      const revoked = await http(t.baseUrl, 'DELETE', adminRevoke, { token: adminToken });
      expect(revoked.status).toBe(204);

      expect(await bearerStatus(mcpUrl, after.access_token)).toBe(401);
      const refresh = await tokenRequest(metadata, {
        grant_type: 'refresh_token',
        refresh_token: after.refresh_token,
        client_id: clientId,
      });
      expect(refresh.status).toBe(400);
      expect(refresh.body.error).toBe('invalid_grant');
    });

    it('registered dynamically (RFC 7591, enabled by config): signs in and calls tools; refused once the user revokes the grant', async () => {
      const user = await userWithTotp(t.baseUrl, `dcr-${era}-${kind}@example.com`);
      const provider = new MemoryOAuthProvider(nativeClientMetadata(`DCR client (${era})`, callback.redirectUri));
      const { client } = await signIn(provider, era, user);
      expect(provider.clientId).toEqual(expect.any(String));
      expect(provider.lastAuthorizationUrl.searchParams.get('client_id')).toBe(provider.clientId);
      await listsAndCalls(client, era);

      const grant = await grantOf(db, user.userId, provider.clientId!);
      const rest = await restToken(t.baseUrl, user);
      const revoked = await http(t.baseUrl, 'DELETE', `/api/v1/auth/oauth/grants/${encodeURIComponent(grant.grantId)}`, { token: rest });
      expect(revoked.status).toBe(204);
      expect(await bearerStatus(mcpUrl, provider.tokens()!.access_token)).toBe(401);
      const listed = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: rest });
      expect(listed.body.grants.find((g: { id: string }) => g.id === grant.grantId)?.status).toBe('revoked');
    });

    it('steps up: an mcp:read token lists tools; a tool call gets 403 insufficient_scope and the SDK re-authorizes for mcp:tools, then calls', async () => {
      const user = await userWithTotp(t.baseUrl, `stepup-${era}-${kind}@example.com`);
      const clientMetadata = nativeClientMetadata(`Step-up client (${era})`, callback.redirectUri);
      const registered = await adminRegisterClient(t.baseUrl, adminToken, clientMetadata);
      const provider = new MemoryOAuthProvider(clientMetadata, { clientInformation: { client_id: registered.clientId } });

      // The host asks only to look (least privilege); the user signs in and consents to that.
      expect(await auth(provider, { serverUrl: mcpUrl, scope: 'mcp:read' })).toBe('REDIRECT');
      expect(provider.lastAuthorizationUrl.searchParams.get('scope')?.split(' ')).not.toContain('mcp:tools');
      await browser.context.clearCookies();
      const firstPage = await browser.newPage();
      const first = await authorizeInBrowser(firstPage, provider.lastAuthorizationUrl.href, callback, user);
      await firstPage.close();
      await new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }).finishAuth(first.callback!.searchParams);
      const narrow = provider.tokens()!;
      const narrowScopes = String(claimsOf(narrow.access_token).scope).split(' ');
      expect(narrowScopes).toContain('mcp:read');
      expect(narrowScopes).not.toContain('mcp:tools');

      // The endpoint's answer to a tool call with it: 403 and the scope to step up to.
      const raw = await fetch(mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${narrow.access_token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'tool_echo', arguments: { message: 'x' } } }),
      });
      const httpRefusal = (await raw.json()) as { error: Record<string, unknown> };
      expect(raw.status).toBe(403);
      const challenge = wwwAuthenticate(raw.headers.get('www-authenticate'));
      expect(challenge.params.error).toBe('insufficient_scope');
      expect(challenge.params.scope).toBe('mcp:tools');
      expect(challenge.params.resource_metadata).toBe(`${t.baseUrl}/.well-known/oauth-protected-resource`);
      expect(httpRefusal.error.data).toEqual({
        status: 403,
        error: 'FORBIDDEN',
        details: [{ field: 'scope', code: 'insufficient_scope', message: 'Requires the mcp:tools scope' }],
      });

      // Over WebSocket the token opens the socket and lists tools; each tools/call is checked as it comes and gets the same refusal.
      const answers = await overWebSocket(`${mcpUrl.replace('http', 'ws')}/ws`, narrow.access_token, [
        {
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'ws', version: '1' } },
        },
        { method: 'notifications/initialized' },
        { id: 2, method: 'tools/list', params: {} },
        { id: 3, method: 'tools/call', params: { name: 'tool_echo', arguments: { message: 'x' } } },
      ]);
      expect((answers.get(2)?.result?.tools as Array<{ name: string }>).map((tool) => tool.name)).toEqual(
        expect.arrayContaining(['tool_echo']),
      );
      expect(answers.get(3)).toEqual({ jsonrpc: '2.0', id: 3, error: httpRefusal.error });

      // The SDK client: listing works; the call meets the 403 and asks to send the user back for the wider scope.
      const reader = mcpClient(era);
      open.push(reader);
      await reader.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
      expect((await reader.listTools()).tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['tool_echo']));
      const before = provider.authorizationUrls.length;
      const stepUp = await reader.callTool({ name: 'tool_echo', arguments: { message: 'needs mcp:tools' } }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(stepUp).toBeInstanceOf(UnauthorizedError);
      expect(provider.authorizationUrls).toHaveLength(before + 1);
      expect(provider.lastAuthorizationUrl.searchParams.get('scope')?.split(' ')).toEqual(
        expect.arrayContaining(['mcp:read', 'mcp:tools']),
      );

      // Still signed in at the authorization server: only the consent to the added scope is asked.
      const secondPage = await browser.newPage();
      const second = await authorizeInBrowser(secondPage, provider.lastAuthorizationUrl.href, callback, user);
      await secondPage.close();
      expect(second.visited).toEqual(['consent', 'callback']);
      await new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }).finishAuth(second.callback!.searchParams);
      expect(String(claimsOf(provider.tokens()!.access_token).scope).split(' ')).toContain('mcp:tools');
      const caller = mcpClient(era);
      open.push(caller);
      await caller.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
      const result = await caller.callTool({ name: 'tool_echo', arguments: { message: `stepped up (${era})` } });
      expect(result.structuredContent).toEqual({ message: `stepped up (${era})` });
    });

    it('pre-registered by an admin: signs in and calls tools; refused once an admin terminates the grant session', async () => {
      const user = await userWithTotp(t.baseUrl, `pre-${era}-${kind}@example.com`);
      const clientMetadata = nativeClientMetadata(`Pre-registered client (${era})`, callback.redirectUri);
      const registered = await adminRegisterClient(t.baseUrl, adminToken, clientMetadata);
      const provider = new MemoryOAuthProvider(clientMetadata, { clientInformation: { client_id: registered.clientId } });
      const { client } = await signIn(provider, era, user);
      expect(provider.lastAuthorizationUrl.searchParams.get('client_id')).toBe(registered.clientId);
      await listsAndCalls(client, era);

      const grant = await grantOf(db, user.userId, registered.clientId);
      const sessions = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${user.userId}&status=active`, { token: adminToken });
      expect(sessions.status).toBe(200);
      expect(sessions.body.sessions.map((s: { id: string }) => s.id)).toContain(grant.sessionId);
      const ended = await http(t.baseUrl, 'POST', `/api/v1/sessions/${grant.sessionId}/terminate`, { token: adminToken });
      expect(ended.status).toBe(200);

      const tokens = provider.tokens()!;
      expect(await bearerStatus(mcpUrl, tokens.access_token)).toBe(401);
      const refresh = await tokenRequest(metadata, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token,
        client_id: registered.clientId,
      });
      expect(refresh.body.error).toBe('invalid_grant');
      // The connected client is refused too (its next call needs a new sign-in).
      await expect(client.callTool({ name: 'tool_echo', arguments: { message: 'after' } })).rejects.toBeInstanceOf(Error);
    });
  });
});
