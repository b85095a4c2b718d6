import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RequestRateLimiter } from '@app/auth';
import { APP_CONFIG, AppConfig, AppException } from '@app/core';
import { InteractionPages } from '../pages/interaction-pages';
import { errorPage } from '../pages/sign-in-pages';
import { INTERACTION_PREFIX, OAuthProvider } from './oauth-provider';

/** RFC 8414 metadata of an issuer without a path; OpenID discovery serves the same document. */
export const AUTHORIZATION_SERVER_METADATA_PATH = '/.well-known/oauth-authorization-server';
export const OPENID_CONFIGURATION_PATH = '/.well-known/openid-configuration';

/**
 * The authorization server on the gateway's Fastify instance, outside the /api/v1 prefix: the
 * provider's endpoints under /oauth (and the two discovery documents), handed the raw request
 * with its body unread (the library parses it); the sign-in and consent pages under
 * /oauth/interaction. Plain Fastify routes in their own scope: no JSON parser, no Nest guard (the
 * OAuth protocol and the pages authenticate what they serve).
 */
@Injectable()
export class OAuthRoutes implements OnModuleInit {
  private readonly logger = new Logger(OAuthRoutes.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
    private readonly oauth: OAuthProvider,
    private readonly pages: InteractionPages,
    private readonly limiter: RequestRateLimiter,
  ) {}

  onModuleInit(): void {
    if (!this.config.oauth.enabled) return;
    const fastify = this.adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
    if (!fastify?.register) return;
    void fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      // Bodies stay unread: the provider reads its own, the pages read their forms.
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
      scope.setErrorHandler((error: FastifyError, _request, reply) => {
        const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
        if (status >= 500) this.logger.error({ err: error }, 'OAuth route failed');
        if (reply.sent || reply.raw.headersSent) return;
        return reply
          .code(status)
          .header('content-type', 'text/html; charset=utf-8')
          .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
          .send(errorPage('Something went wrong', status >= 500 ? 'The server could not complete the request' : error.message));
      });
      const provider = (request: FastifyRequest, reply: FastifyReply) => this.toProvider(request, reply);
      scope.route({ method: ['GET', 'POST', 'OPTIONS'], url: '/oauth/*', handler: provider });
      scope.route({ method: ['GET', 'OPTIONS'], url: OPENID_CONFIGURATION_PATH, handler: provider });
      scope.route({ method: ['GET', 'OPTIONS'], url: AUTHORIZATION_SERVER_METADATA_PATH, handler: provider });
      scope.get(`${INTERACTION_PREFIX}/:uid`, (request, reply) => this.pages.show(request, reply));
      scope.post(`${INTERACTION_PREFIX}/:uid/login`, (request, reply) => this.pages.login(request, reply));
      scope.post(`${INTERACTION_PREFIX}/:uid/consent`, (request, reply) => this.pages.decide(request, reply));
      scope.post(`${INTERACTION_PREFIX}/:uid/idp`, (request, reply) => this.pages.federated(request, reply));
    });
  }

  /**
   * The provider answers on the raw response; the security headers already set go with it. Its
   * unauthenticated POSTs (token, registration, revocation) count against the caller's address's
   * budget for the auth routes, as login and refresh do.
   */
  private async toProvider(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.method === 'POST') {
      try {
        await this.limiter.consume('auth', RequestRateLimiter.trackerOf(undefined, request.ip));
      } catch (error) {
        if (!(error instanceof AppException) || error.getStatus() !== 429) throw error;
        await reply
          .code(429)
          .headers(error.headers)
          .header('cache-control', 'no-store')
          .send({ error: 'slow_down', error_description: 'Too many requests from this address; retry later' });
        return;
      }
    }
    const provider = await this.oauth.get();
    const raw = request.raw;
    this.pinToIssuer(request);
    if (request.routeOptions.url === AUTHORIZATION_SERVER_METADATA_PATH) {
      const query = raw.url?.includes('?') ? raw.url.slice(raw.url.indexOf('?')) : '';
      raw.url = `${OPENID_CONFIGURATION_PATH}${query}`;
    }
    reply.hijack();
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) reply.raw.setHeader(name, value as string);
    }
    await provider.callback()(raw, reply.raw);
  }

  /**
   * The library builds every URL it publishes or redirects to (the metadata's endpoints, an
   * interaction's return address) from the request's Host and forwarded headers. Those are the
   * client's to choose, so the provider is handed the issuer's host and scheme instead (it trusts
   * the forwarded headers only as set here), and the caller's address as Fastify resolved it
   * (TRUST_PROXY): a forged Host or X-Forwarded-Host cannot move an endpoint off the issuer.
   */
  private pinToIssuer(request: FastifyRequest): void {
    const issuer = new URL(this.oauth.issuerUrl());
    const headers = request.raw.headers;
    headers.host = issuer.host;
    delete headers['x-forwarded-host'];
    delete headers.forwarded;
    headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1);
    headers['x-forwarded-for'] = request.ip;
  }
}
