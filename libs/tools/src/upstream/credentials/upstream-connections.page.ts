import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, AppConfig, AppException, BrowserSignIns, clientInfo, escapeHtml } from '@app/core';
import { OAuthFlowStore } from './oauth-flow-store';
import { CONNECTIONS_PATH, registerPages, sendMessage, sendPage, sendRedirect, signInFirst } from './upstream-connect.pages';
import { ConnectionView, UpstreamCredentialService } from './upstream-credential.service';
import { UpstreamOAuthService } from './upstream-oauth.service';
import { UpstreamCredentialRepository } from './upstream-credential.repository';

/** The per-browser value the forms' anti-forgery token is bound to (with the user). */
const BROWSER_COOKIE = 'connections_browser';
const BROWSER_PATTERN = /^[A-Za-z0-9_-]{32}$/;
const MAX_FORM_BYTES = 16_384;

export const CONNECTIONS_ROUTES = {
  page: CONNECTIONS_PATH,
  disconnect: `${CONNECTIONS_PATH}/disconnect`,
  start: `${CONNECTIONS_PATH}/start`,
  secret: `${CONNECTIONS_PATH}/secret`,
} as const;

/**
 * GET /connect: a signed-in user's own connections to the upstreams that act with their
 * credential (the REST list's data, never a secret), with Disconnect (the REST DELETE's service
 * method: same audit record, same transaction), Connect for user-oauth upstreams (a fresh one-time
 * connect link, as an elicitation gets) and a write-only form for user-secret ones. Server-rendered
 * under the sign-in pages' CSP, no script. The browser is recognised by the gateway's sign-in
 * session (BrowserSignIns); a browser not signed in goes through the sign-in page and comes back.
 * Every form carries an anti-forgery token: an HMAC, under a key derived from ENCRYPTION_KEY, of the
 * user id and a random per-browser cookie (SameSite=Strict, HttpOnly), checked in constant time.
 */
@Injectable()
export class UpstreamConnectionsPage implements OnModuleInit {
  private readonly logger = new Logger(UpstreamConnectionsPage.name);
  private readonly key: Buffer;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
    private readonly credentials: UpstreamCredentialService,
    private readonly repository: UpstreamCredentialRepository,
    private readonly oauth: UpstreamOAuthService,
    private readonly flows: OAuthFlowStore,
    private readonly browser: BrowserSignIns,
  ) {
    this.key = createHmac('sha256', config.secrets.encryptionKey).update('secure-mcp-server connections page v1').digest();
  }

  onModuleInit(): void {
    if (!this.config.oauth.enabled) return;
    const how = { logger: this.logger, refusedTitle: 'Cannot change this connection', failed: 'Connections page failed' };
    registerPages(this.adapterHost, how, (scope) => {
      // The forms' bodies, read here as plain urlencoded text (nothing else is accepted).
      if (scope.hasContentTypeParser('application/x-www-form-urlencoded'))
        scope.removeContentTypeParser('application/x-www-form-urlencoded');
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
        (_request, body, done) => done(null, new URLSearchParams(String(body))),
      );
      scope.get(CONNECTIONS_ROUTES.page, (request, reply) => this.show(request, reply));
      scope.post(CONNECTIONS_ROUTES.disconnect, (request, reply) => this.disconnect(request, reply));
      scope.post(CONNECTIONS_ROUTES.start, (request, reply) => this.start(request, reply));
      scope.post(CONNECTIONS_ROUTES.secret, (request, reply) => this.storeSecret(request, reply));
    });
  }

  /** GET /connect — the list, or the sign-in page first. */
  private async show(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const signIn = this.browser.registered;
    if (!signIn) return this.message(reply, 404, 'Not available', 'Connections are not available on this server');
    const user = await signIn.signedInUser(request.raw, reply.raw);
    if (!user) return signInFirst(reply, signIn, this.flows, {});
    if (!(await this.repository.activeUser(user))) return this.message(reply, 403, 'Not available', 'Your account is not active');
    let browserId = browserIdOf(request);
    if (!browserId) {
      browserId = randomBytes(24).toString('base64url');
      const secure = signIn.baseUrl().startsWith('https:') ? '; Secure' : '';
      reply.header('set-cookie', `${BROWSER_COOKIE}=${browserId}; Path=${CONNECTIONS_PATH}; HttpOnly; SameSite=Strict${secure}`);
    }
    const views = await this.credentials.list({ userId: user });
    return sendPage(reply, 200, 'Your connections', this.render(views, this.csrf(user, browserId), this.notice(request)));
  }

  /** POST /connect/disconnect — the REST DELETE's service method, then back to the list. */
  private async disconnect(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { user, form } = await this.checked(request, reply);
    const upstream = form.get('upstream') ?? '';
    await this.credentials.remove({ userId: user }, upstream, clientInfo(request));
    return sendRedirect(reply, `${CONNECTIONS_PATH}?done=disconnected`);
  }

  /** POST /connect/start — a fresh one-time connect link for a user-oauth upstream, opened at once. */
  private async start(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { user, form } = await this.checked(request, reply);
    const upstream = form.get('upstream') ?? '';
    const url = this.oauth.handles(upstream) ? await this.oauth.connectUrl(user, upstream) : undefined;
    if (!url) throw AppException.notFound(`No upstream named ${upstream} is connected through your browser`);
    return sendRedirect(reply, url);
  }

  /** POST /connect/secret — a user-secret upstream's personal token (write-only: never shown again). */
  private async storeSecret(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { user, form } = await this.checked(request, reply);
    await this.credentials.store({ userId: user }, form.get('upstream') ?? '', form.get('secret') ?? undefined, clientInfo(request));
    return sendRedirect(reply, `${CONNECTIONS_PATH}?done=stored`);
  }

  /** A form post: from a signed-in, active user, with this browser's and user's anti-forgery token; 403 otherwise. */
  private async checked(request: FastifyRequest, reply: FastifyReply): Promise<{ user: string; form: URLSearchParams }> {
    const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
    const user = await this.browser.registered?.signedInUser(request.raw, reply.raw);
    const browserId = browserIdOf(request);
    if (!user || !browserId || !this.checkCsrf(user, browserId, form.get('csrf'))) {
      throw AppException.forbidden('This form has expired: open the connections page again');
    }
    if (!(await this.repository.activeUser(user))) throw AppException.forbidden('Your account is not active');
    return { user, form };
  }

  private csrf(user: string, browserId: string): string {
    return createHmac('sha256', this.key).update(`csrf\0${user}\0${browserId}`).digest('base64url');
  }

  private checkCsrf(user: string, browserId: string, presented: string | null): boolean {
    if (typeof presented !== 'string') return false;
    const left = Buffer.from(presented);
    const right = Buffer.from(this.csrf(user, browserId));
    return left.length === right.length && timingSafeEqual(left, right);
  }

  private notice(request: FastifyRequest): string {
    const done = (request.query as Record<string, unknown>).done;
    if (done === 'disconnected') return '<p role="status">Disconnected.</p>\n';
    if (done === 'stored') return '<p role="status">Your token is stored. It is never shown again.</p>\n';
    return '';
  }

  private render(views: ConnectionView[], csrf: string, notice: string): string {
    if (views.length === 0) return `${notice}<p>No upstream on this server acts with a credential of your own.</p>`;
    const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
    const items = views.map((view, index) => {
      const name = escapeHtml(view.upstream);
      const state = view.broken ? 'Broken: connect again' : view.connected ? 'Connected' : 'Not connected';
      const times = [
        ['Connected at', view.createdAt],
        ['Updated at', view.updatedAt],
        ['Last used at', view.lastUsedAt],
      ]
        .filter(([, at]) => at)
        .map(
          ([label, at]) => `<dt>${label}</dt><dd><time datetime="${(at as Date).toISOString()}">${(at as Date).toISOString()}</time></dd>`,
        )
        .join('');
      const forms: string[] = [];
      if (view.connected || view.broken) {
        forms.push(
          `<form method="post" action="${CONNECTIONS_ROUTES.disconnect}">${hidden('csrf', csrf)}${hidden('upstream', view.upstream)}` +
            `<button type="submit" aria-label="Disconnect ${name}">Disconnect</button></form>`,
        );
      }
      if (view.mode === 'user-oauth' && !view.connected) {
        forms.push(
          `<form method="post" action="${CONNECTIONS_ROUTES.start}">${hidden('csrf', csrf)}${hidden('upstream', view.upstream)}` +
            `<button type="submit" aria-label="Connect ${name}">Connect</button></form>`,
        );
      }
      if (view.mode === 'user-secret') {
        forms.push(
          `<form method="post" action="${CONNECTIONS_ROUTES.secret}">${hidden('csrf', csrf)}${hidden('upstream', view.upstream)}` +
            `<label for="secret-${index}">Personal token for ${name}</label> ` +
            `<input id="secret-${index}" name="secret" type="password" autocomplete="off" required maxlength="8192"> ` +
            `<button type="submit">${view.connected ? 'Replace token' : 'Store token'}</button></form>`,
        );
      }
      return (
        `<li><section aria-labelledby="upstream-${index}"><h2 id="upstream-${index}">${name}</h2>` +
        `<dl><dt>Mode</dt><dd>${escapeHtml(view.mode)}</dd><dt>Status</dt><dd>${state}</dd>${times}</dl>${forms.join('')}</section></li>`
      );
    });
    return `${notice}<ul>\n${items.join('\n')}\n</ul>`;
  }

  private message(reply: FastifyReply, status: number, title: string, message: string): Promise<void> {
    return sendMessage(reply, status, title, message);
  }
}

function browserIdOf(request: FastifyRequest): string | undefined {
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const [name, value] = part.trim().split('=');
    if (name === BROWSER_COOKIE && value && BROWSER_PATTERN.test(value)) return value;
  }
  return undefined;
}
