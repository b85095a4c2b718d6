import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import * as speakeasy from 'speakeasy';
import { WebSocket } from 'ws';
import { Client } from '@modelcontextprotocol/client';
import { DataSource } from 'typeorm';
import type {
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import { HeadlessBrowser, launchBrowser } from '../support/browser';
import { ADMIN_EMAIL, identityEnv, login, PASSWORD } from '../support/identity';
import { DatabaseKind, http, HttpResult, startTestApp, TestApp } from '../support/test-app';

/**
 * The OAuth suites' kit: a loopback redirect-URI listener, an https host for Client ID Metadata
 * Documents (self-signed, its certificate handed to the server as OAUTH_CIMD_CA_FILE), an
 * OAuthClientProvider for the official SDK client that keeps everything in memory, PKCE pairs, a
 * TOTP source that never replays a step, and the Chromium driver of our sign-in and consent pages.
 */

// ---------------------------------------------------------------------------------------------
// Loopback listeners

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function shut(server: Server): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A native client's loopback redirect URI (RFC 8252 §7.3): `http://127.0.0.1:<port>/callback`.
 * Every request it receives is kept, in order.
 */
export class CallbackServer {
  readonly received: URL[] = [];
  private server!: Server;
  port = 0;

  static async start(): Promise<CallbackServer> {
    const callback = new CallbackServer();
    callback.server = createHttpServer((req, res) => callback.handle(req, res));
    callback.port = await listen(callback.server);
    return callback;
  }

  get redirectUri(): string {
    return `http://127.0.0.1:${this.port}/callback`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${this.port}`);
    // Only the redirect URI counts (the browser asks for /favicon.ico too).
    if (url.pathname !== '/callback') return void res.writeHead(404).end();
    this.received.push(url);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. You can close this page.');
  }

  close(): Promise<void> {
    return shut(this.server);
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), in a temporary directory. */
export interface LoopbackCertificate {
  dir: string;
  certFile: string;
  key: string;
  cert: string;
}

export function loopbackCertificate(): LoopbackCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'smcp-cimd-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { dir, certFile, key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
}

type Route = { kind: 'json'; body: unknown } | { kind: 'redirect'; location: string };

/**
 * Where clients publish their Client ID Metadata Documents: an https server on 127.0.0.1.
 * `publish(path, doc)` serves a JSON document; `redirect(path, to)` answers 302; `hits` counts the
 * requests per path, so a test can show a refused document was never fetched.
 */
export class ClientMetadataHost {
  readonly hits = new Map<string, number>();
  private readonly routes = new Map<string, Route>();
  private server!: Server;
  port = 0;

  static async start(tls: LoopbackCertificate): Promise<ClientMetadataHost> {
    const host = new ClientMetadataHost();
    host.server = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => host.handle(req, res));
    host.port = await listen(host.server);
    return host;
  }

  url(path: string, hostname = '127.0.0.1'): string {
    return `https://${hostname}:${this.port}${path}`;
  }

  publish(path: string, body: unknown): string {
    this.routes.set(path, { kind: 'json', body });
    return this.url(path);
  }

  redirect(path: string, location: string): string {
    this.routes.set(path, { kind: 'redirect', location });
    return this.url(path);
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://127.0.0.1').pathname;
    this.hits.set(path, this.hitsOf(path) + 1);
    const route = this.routes.get(path);
    if (!route) res.writeHead(404).end();
    else if (route.kind === 'redirect') res.writeHead(302, { location: route.location }).end();
    else res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end(JSON.stringify(route.body));
  }

  close(): Promise<void> {
    return shut(this.server);
  }
}

// ---------------------------------------------------------------------------------------------
// The SDK client's side

/** Client metadata of a public native client (CIMD document, DCR body, or admin registration). */
export function nativeClientMetadata(name: string, redirectUri: string, extra: Partial<OAuthClientMetadata> = {}): OAuthClientMetadata {
  return {
    client_name: name,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

/**
 * An OAuthClientProvider for the official SDK: everything in memory (one "session" of a host),
 * `redirectToAuthorization` only records the URL (the test's Chromium opens it).
 */
export class MemoryOAuthProvider implements OAuthClientProvider {
  authorizationUrls: URL[] = [];
  savedTokens: StoredOAuthTokens[] = [];
  private info: StoredOAuthClientInformation | undefined;
  private verifier = '';
  private discovery: OAuthDiscoveryState | undefined;

  constructor(
    private readonly metadata: OAuthClientMetadata,
    options: { clientMetadataUrl?: string; clientInformation?: StoredOAuthClientInformation } = {},
  ) {
    this.clientMetadataUrl = options.clientMetadataUrl;
    this.info = options.clientInformation;
  }

  readonly clientMetadataUrl: string | undefined;

  get redirectUrl(): string {
    return this.metadata.redirect_uris[0];
  }

  get clientMetadata(): OAuthClientMetadata {
    return this.metadata;
  }

  clientInformation(): StoredOAuthClientInformation | undefined {
    return this.info;
  }

  saveClientInformation(info: StoredOAuthClientInformation): void {
    this.info = info;
  }

  tokens(): StoredOAuthTokens | undefined {
    return this.savedTokens.at(-1);
  }

  saveTokens(tokens: StoredOAuthTokens): void {
    this.savedTokens.push(tokens);
  }

  redirectToAuthorization(url: URL): void {
    this.authorizationUrls.push(url);
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }

  /** The client_id the authorization server knows this client by (after the first auth() call). */
  get clientId(): string | undefined {
    return this.info?.client_id;
  }

  get lastAuthorizationUrl(): URL {
    const url = this.authorizationUrls.at(-1);
    if (!url) throw new Error('the client never asked to send the user to the authorization server');
    return url;
  }
}

// ---------------------------------------------------------------------------------------------
// Raw OAuth (the attack tests)

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface AsMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  registration_endpoint?: string;
  revocation_endpoint?: string;
  scopes_supported?: string[];
  code_challenge_methods_supported?: string[];
  [key: string]: unknown;
}

export async function asMetadata(baseUrl: string): Promise<AsMetadata> {
  const res = await http<AsMetadata>(baseUrl, 'GET', '/.well-known/oauth-authorization-server');
  if (res.status !== 200) throw new Error(`AS metadata: ${res.status} ${res.text}`);
  return res.body;
}

/** An authorization request URL with the usual parameters, overridable (undefined removes one). */
export function authorizationUrl(metadata: AsMetadata, params: Record<string, string | undefined>): string {
  const url = new URL(metadata.authorization_endpoint);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  return url.href;
}

/** A GET that does not follow redirects: status, Location, body text. */
export async function getManual(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; location: string | null; text: string }> {
  const res = await fetch(url, { redirect: 'manual', headers });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

/** POSTs a form to the token endpoint (client_id in the body: public clients). */
export function tokenRequest(
  metadata: AsMetadata,
  form: Record<string, string | undefined>,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.set(name, value);
  const url = new URL(metadata.token_endpoint);
  return http(url.origin, 'POST', url.pathname, {
    raw: body.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

/** The claims of a JWT (no verification: for reading `aud`, `sid`, `scope` in assertions). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

// ---------------------------------------------------------------------------------------------
// The user's side: TOTP and the browser

/**
 * TOTP codes for one enrolled secret that never reuse a step (the server refuses a replayed code
 * and any step not after the last one used): the current step, or the next one while the current
 * one is spent (within the ±1 step drift window); waits when both are spent.
 */
export class TotpSource {
  private lastStep = -1;

  constructor(readonly secret: string) {}

  async next(): Promise<string> {
    for (;;) {
      const now = Math.floor(Date.now() / 1000 / 30);
      const step = Math.max(now, this.lastStep + 1);
      if (step <= now + 1) {
        this.lastStep = step;
        return speakeasy.totp({ secret: this.secret, encoding: 'base32', time: step * 30 });
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** A user who signs in: email, password and (when MFA is on) their TOTP source and unused backup codes. */
export interface SignInUser {
  email: string;
  password?: string;
  totp?: TotpSource;
  backupCodes?: string[];
}

/** Registers a user and enrolls TOTP over REST (what the user did once, in the product). */
export async function userWithTotp(
  baseUrl: string,
  email: string,
): Promise<SignInUser & { userId: string; totp: TotpSource; backupCodes: string[] }> {
  const registered = await http(baseUrl, 'POST', '/api/v1/auth/register', {
    body: { email, password: PASSWORD, name: email.split('@')[0] },
  });
  if (registered.status !== 201) throw new Error(`register ${email}: ${registered.status} ${registered.text}`);
  const login = await http(baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } });
  const token = login.body.accessToken as string;
  const enabled = await http(baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token, body: { type: 'totp' } });
  if (enabled.status !== 200) throw new Error(`mfa enable: ${enabled.status} ${enabled.text}`);
  const totp = new TotpSource(enabled.body.secret);
  const verified = await http(baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token, body: { code: await totp.next(), type: 'totp' } });
  if (verified.status !== 200) throw new Error(`mfa verify: ${verified.status} ${verified.text}`);
  return { email, password: PASSWORD, totp, backupCodes: [...enabled.body.backupCodes], userId: registered.body.id };
}

/** What the browser met on its way: each page it stopped at, for tests about the pages themselves. */
export type PageKind = 'sign-in' | 'mfa' | 'consent' | 'callback' | 'other';

/** Which of our pages the browser shows now. */
export async function pageKind(page: Page, redirectUri: string): Promise<PageKind> {
  if (page.url().startsWith(redirectUri)) return 'callback';
  if (await page.locator('input[name="password"]').count()) return 'sign-in';
  if (await page.locator('input[name="code"]').count()) return 'mfa';
  if (await consentButton(page, 'allow').count()) return 'consent';
  return 'other';
}

export function consentButton(page: Page, which: 'allow' | 'deny') {
  return page.getByRole('button', { name: which === 'allow' ? /^(allow|approve|authori[sz]e|continue)/i : /^(deny|cancel|refuse)/i });
}

/** Clicks a submit button and waits until the page it was on is gone and the next one loaded. */
export async function submitAndWait(page: Page, button: ReturnType<Page['locator']>): Promise<void> {
  const handle = await button.first().elementHandle();
  await button.first().click();
  await handle?.waitForElementState('hidden').catch(() => undefined);
  await page.waitForLoadState('load');
}

export interface AuthorizeOptions {
  /** Refuse on the consent page instead of allowing. */
  deny?: boolean;
  /** Stop and return when the browser reaches this page (for tests about a page). */
  stopAt?: PageKind;
  /** Called on each of our pages before the browser acts on it (for assertions on what a page shows). */
  inspect?: (kind: PageKind, page: Page) => Promise<void>;
  /** Signs in on the sign-in page another way than the password (e.g. through an identity provider), back on our pages when it resolves. */
  signIn?: (page: Page) => Promise<void>;
}

/**
 * Opens `authorizationUrl` in the browser and goes through whatever of our pages come: sign-in
 * (email, password), the second factor (TOTP), consent (allow, or deny). Returns the URL the
 * browser was sent back to on the redirect URI, as the loopback listener received it.
 */
export async function authorizeInBrowser(
  page: Page,
  url: string,
  redirect: CallbackServer | string,
  user: SignInUser,
  options: AuthorizeOptions = {},
): Promise<{ callback?: URL; visited: PageKind[] }> {
  // Our own listener tells exactly what it received; another one (the conformance suite's) is read from the address bar.
  const before = typeof redirect === 'string' ? 0 : redirect.received.length;
  const arrived = () => (typeof redirect === 'string' ? undefined : redirect.received.slice(before).at(-1));
  const redirectUri = typeof redirect === 'string' ? redirect : redirect.redirectUri;
  const visited: PageKind[] = [];
  await page.goto(url);
  for (let step = 0; step < 8; step++) {
    const kind = await pageKind(page, redirectUri);
    visited.push(kind);
    if (kind === 'callback') return { callback: arrived() ?? new URL(page.url()), visited };
    if (options.stopAt === kind) return { visited };
    await options.inspect?.(kind, page);
    if (kind === 'sign-in' && options.signIn) {
      await options.signIn(page);
    } else if (kind === 'sign-in') {
      const email = page.locator('input[name="email"]');
      if (await email.isEditable().catch(() => false)) await email.fill(user.email);
      await page.locator('input[name="password"]').fill(user.password ?? PASSWORD);
      await submitAndWait(page, page.locator('form:has(input[name="password"]) [type="submit"]'));
    } else if (kind === 'mfa') {
      if (!user.totp) throw new Error(`${user.email} was asked for a second factor and has none`);
      await page.locator('input[name="code"]').fill(await user.totp.next());
      await submitAndWait(page, page.locator('form:has(input[name="code"]) [type="submit"]'));
    } else if (kind === 'consent') {
      await submitAndWait(page, consentButton(page, options.deny ? 'deny' : 'allow'));
    } else {
      throw new Error(`the browser stopped on an unexpected page ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 500)}`);
    }
  }
  throw new Error(`no redirect back after ${visited.join(' → ')}`);
}

// ---------------------------------------------------------------------------------------------
// Our server's side

export const ERAS = ['modern', 'legacy'] as const;
export type Era = (typeof ERAS)[number];

/** The official v2 client: pinned to 2026-07-28 (stateless), or on the 2025-11-25 era (initialize, sessions). */
export function mcpClient(era: Era): Client {
  return era === 'modern'
    ? new Client({ name: 'oauth-e2e-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
    : new Client({ name: 'oauth-e2e-legacy', version: '1.0.0' });
}

/** The status an MCP endpoint answers a bearer token with (401: refused before any MCP processing). */
export async function bearerStatus(url: string, token: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: {} } }),
  });
  await res.text();
  return res.status;
}

/**
 * Sends JSON-RPC messages one after another over an MCP WebSocket opened with a bearer token
 * (subprotocol `mcp`), each request waiting for its answer; returns the answers by id.
 */
export async function overWebSocket(
  url: string,
  token: string,
  messages: Array<Record<string, unknown>>,
): Promise<Map<number, { result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } }>> {
  const socket = new WebSocket(url, ['mcp'], { headers: { authorization: `Bearer ${token}` } });
  const answers = new Map<number, Record<string, unknown>>();
  const waiting = new Map<number, () => void>();
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { id?: number };
    if (typeof message.id !== 'number') return;
    answers.set(message.id, message);
    waiting.get(message.id)?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
  });
  try {
    for (const message of messages) {
      const id = message.id;
      const answered = typeof id === 'number' ? new Promise<void>((resolve) => waiting.set(id, resolve)) : undefined;
      socket.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
      await answered;
    }
  } finally {
    socket.close();
  }
  return answers as Awaited<ReturnType<typeof overWebSocket>>;
}

/** A `WWW-Authenticate` challenge: its scheme and auth-params (quoted values unquoted). */
export function wwwAuthenticate(header: string | null): { scheme: string; params: Record<string, string> } {
  const value = header ?? '';
  const scheme = /^\s*(\S+)/.exec(value)?.[1] ?? '';
  const params: Record<string, string> = {};
  for (const match of value.slice(scheme.length).matchAll(/([A-Za-z0-9_-]+)="((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+)=([^\s,]+)/g)) {
    if (match[1]) params[match[1]] = match[2].replace(/\\(.)/g, '$1');
    else params[match[3]] = match[4];
  }
  return { scheme, params };
}

/** The grant a user gave a client, as the server keeps it (oauth_grants). */
export async function grantOf(
  db: DataSource,
  userId: string,
  clientId: string,
): Promise<{ grantId: string; sessionId: string; scopes: string[]; resources: string[] }> {
  const rows: Array<{ grant_id: string; session_id: string; scopes: string[]; resources: string[] }> = await db.query(
    `SELECT grant_id, session_id, scopes, resources FROM oauth_grants WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL ORDER BY created_at DESC`,
    [userId, clientId],
  );
  if (rows.length === 0) throw new Error(`no grant of ${userId} to ${clientId}`);
  return { grantId: rows[0].grant_id, sessionId: rows[0].session_id, scopes: rows[0].scopes, resources: rows[0].resources };
}

/** An admin registers a client (POST /admin/oauth/clients, an extension); returns its id (and secret, for a confidential one). */
export async function adminRegisterClient(
  baseUrl: string,
  adminToken: string,
  metadata: OAuthClientMetadata,
  confidential = false,
): Promise<{ clientId: string; clientSecret?: string }> {
  const res = await http(baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
    token: adminToken,
    body: { clientName: metadata.client_name, redirectUris: metadata.redirect_uris, ...(confidential ? { confidential } : {}) },
  });
  if (res.status !== 201) throw new Error(`register client: ${res.status} ${res.text}`);
  return { clientId: res.body.clientId, clientSecret: res.body.clientSecret };
}

/** A REST access token for a user (password, and one of their backup codes when enrolled: TOTP steps stay for the browser). */
export async function restToken(baseUrl: string, user: SignInUser): Promise<string> {
  const mfaCode = user.totp ? (user.backupCodes?.shift() ?? (await user.totp.next())) : undefined;
  const body = { email: user.email, password: user.password ?? PASSWORD, ...(mfaCode ? { mfaCode } : {}) };
  const res = await http(baseUrl, 'POST', '/api/v1/auth/login', { body });
  if (res.status !== 200) throw new Error(`login ${user.email}: ${res.status} ${res.text}`);
  return res.body.accessToken;
}

/**
 * One OAuth suite's parts: the server (fetching Client ID Metadata Documents from the loopback
 * host, tests only), that https host, the loopback redirect URI, the metadata, an admin token and
 * a headless browser.
 */
export interface OAuthRig {
  t: TestApp;
  db: DataSource;
  tls: LoopbackCertificate;
  documents: ClientMetadataHost;
  callback: CallbackServer;
  browser: HeadlessBrowser;
  metadata: AsMetadata;
  adminToken: string;
  mcpUrl: string;
  close(): Promise<void>;
}

export async function startOAuthRig(kind: DatabaseKind, env: Record<string, string> = {}): Promise<OAuthRig> {
  const tls = loopbackCertificate();
  const documents = await ClientMetadataHost.start(tls);
  const callback = await CallbackServer.start();
  const t = await startTestApp(kind, {
    env: identityEnv({ OAUTH_CIMD_ALLOW_PRIVATE: 'true', OAUTH_CIMD_CA_FILE: tls.certFile, ...env }),
  });
  const browser = await launchBrowser();
  return {
    t,
    db: t.app.get(DataSource),
    tls,
    documents,
    callback,
    browser,
    metadata: await asMetadata(t.baseUrl),
    adminToken: (await login(t, ADMIN_EMAIL)).token,
    mcpUrl: `${t.baseUrl}/api/v1/mcp`,
    close: async () => {
      await browser.close();
      await t.close();
      await documents.close();
      await callback.close();
      rmSync(tls.dir, { recursive: true, force: true });
    },
  };
}
