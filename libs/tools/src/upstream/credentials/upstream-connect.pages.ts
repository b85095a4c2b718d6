import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import {
  APP_CONFIG,
  AppConfig,
  AppException,
  BrowserSignIns,
  clientInfo,
  escapeHtml,
  page,
  PAGE_CSP,
  PAGES_SIGNED_IN_PATH,
} from '@app/core';
import { OAuthFlowStore } from './oauth-flow-store';
import { CONNECT_PATHS, CONNECT_TTL_MS, UpstreamOAuthService } from './upstream-oauth.service';

/** Connect links and states are base64url of 24-32 random bytes. */
const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * The gateway-hosted connect flow of `auth: user-oauth`, server-rendered without any script under
 * the sign-in pages' CSP. A connect link opens only in a browser signed in to the gateway (the
 * OAuth sign-in pages' session cookie) as the link's own user; a browser not signed in is sent
 * through the sign-in page first and comes back. Then the browser goes to the upstream's
 * authorization server and its answer comes back to the callback, which stores the tokens.
 * Nothing credential-like is ever in these URLs but the one-time link id and the OAuth code.
 */
@Injectable()
export class UpstreamConnectPages implements OnModuleInit {
  private readonly logger = new Logger(UpstreamConnectPages.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
    private readonly oauth: UpstreamOAuthService,
    private readonly flows: OAuthFlowStore,
    private readonly browser: BrowserSignIns,
  ) {}

  onModuleInit(): void {
    // Served with the OAuth sign-in pages (they sign the browser in), whether or not an upstream uses them yet.
    if (!this.config.oauth.enabled) return;
    registerPages(
      this.adapterHost,
      { logger: this.logger, refusedTitle: 'Cannot connect', failed: 'Upstream connect page failed' },
      (scope) => {
        scope.get(`${CONNECT_PATHS.start}/:ticket`, (request, reply) => this.open(request, reply));
        scope.get(PAGES_SIGNED_IN_PATH, (request, reply) => this.signedIn(request, reply));
        scope.get(CONNECT_PATHS.callback, (request, reply) => this.callback(request, reply));
      },
    );
  }

  /** GET /connect/upstream/:ticket — sign in first if needed, then on to the upstream's authorization server. */
  private async open(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const ticket = (request.params as { ticket?: string }).ticket ?? '';
    const signIn = this.browser.registered;
    if (!signIn || !ID_PATTERN.test(ticket) || !(await this.flows.peek('ticket', ticket))) {
      return this.html(
        reply,
        400,
        'Cannot connect',
        'This connect link has expired or was already used: call the tool again for a new one',
      );
    }
    const user = await signIn.signedInUser(request.raw, reply.raw);
    if (!user) return signInFirst(reply, signIn, this.flows, { ticket });
    return this.redirect(reply, await this.oauth.start(ticket, user));
  }

  /** GET /connect/signed-in — back from the sign-in page: continue with the connect link it was for. */
  private async signedIn(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const state = String((request.query as Record<string, unknown>).state ?? '');
    const found = ID_PATTERN.test(state) ? await this.flows.take<{ ticket?: string }>('signin', state) : undefined;
    if (!found) return this.html(reply, 400, 'Cannot connect', 'This sign-in has expired: open the connect link again');
    // Without a ticket the sign-in was for the connections page.
    return this.redirect(reply, found.ticket ? `${CONNECT_PATHS.start}/${found.ticket}` : CONNECTIONS_PATH);
  }

  /** GET /connect/callback — the upstream's authorization server answered: store the connection. */
  private async callback(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const signIn = this.browser.registered;
    if (!signIn) return this.html(reply, 404, 'Cannot connect', 'Connecting accounts is not available on this server');
    const user = await signIn.signedInUser(request.raw, reply.raw);
    const upstream = await this.oauth.finish(new URL(request.url, signIn.baseUrl()), user, clientInfo(request));
    const message = `Your account at ${upstream} is connected. You can close this page and return to your agent: its next call to ${upstream} acts as you.`;
    return sendPage(reply, 200, 'Connected', `<p>${escapeHtml(message)}</p>\n<p><a href="${CONNECTIONS_PATH}">Your connections</a></p>`);
  }

  private redirect(reply: FastifyReply, location: string): Promise<void> {
    return sendRedirect(reply, location);
  }

  private html(reply: FastifyReply, status: number, title: string, message: string): Promise<void> {
    return sendMessage(reply, status, title, message);
  }
}

/** The connections page (UpstreamConnectionsPage), where a sign-in without a connect link returns to. */
export const CONNECTIONS_PATH = '/connect';

/**
 * Registers server-rendered page routes in a Fastify scope of their own: an AppException they throw
 * becomes the page's error page (its status and message), anything else a logged 500 page that
 * names nothing.
 */
export function registerPages(
  adapterHost: HttpAdapterHost,
  how: { logger: Logger; refusedTitle: string; failed: string },
  routes: (scope: FastifyInstance) => void,
): void {
  const fastify = adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
  if (!fastify?.register) return;
  void fastify.register(async (scope) => {
    scope.setErrorHandler((error: FastifyError, _request, reply) => {
      if (error instanceof AppException) return sendMessage(reply, error.getStatus(), how.refusedTitle, error.message);
      how.logger.error({ err: error }, how.failed);
      return sendMessage(reply, 500, 'Something went wrong', 'The server could not complete the request');
    });
    routes(scope);
  });
}

/**
 * Sends a browser that is not signed in through the sign-in page; it comes back to
 * PAGES_SIGNED_IN_PATH with a one-time state that carries `next` (a connect link's ticket, or
 * nothing for the connections page). The code that sign-in ends with is never redeemed: the
 * session cookie it leaves is what counts.
 */
export async function signInFirst(
  reply: FastifyReply,
  signIn: NonNullable<BrowserSignIns['registered']>,
  flows: OAuthFlowStore,
  next: { ticket?: string },
): Promise<void> {
  const state = randomBytes(24).toString('base64url');
  await flows.put('signin', state, next, CONNECT_TTL_MS);
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  return sendRedirect(reply, signIn.signInUrl(state, challenge));
}

/** A page whose main part is one escaped paragraph. */
export function sendMessage(reply: FastifyReply, status: number, title: string, message: string): Promise<void> {
  return sendPage(reply, status, title, `<p>${escapeHtml(message)}</p>`);
}

export async function sendRedirect(reply: FastifyReply, location: string): Promise<void> {
  await reply.code(303).header('location', location).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').send();
}

/** A page under the sign-in pages' CSP, never cached, never framed. */
export async function sendPage(reply: FastifyReply, status: number, title: string, main: string): Promise<void> {
  await reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', PAGE_CSP)
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .send(page(title, main));
}
