import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import { Strategy as OpenIdClientStrategy } from 'openid-client/passport';
import { LoginResponseDto } from '@app/auth';
import { actorOf, IdentityProviderConfig } from '@app/core';
import { IdentityProviders } from '../identity-providers';
import { IdentitySignIn } from './identity-sign-in.service';
import type { AuthorizationState } from './oidc-state';

/** A sign-in that finished an OAuth interaction: the URL its browser continues at. */
export interface InteractionContinuation {
  continueAt: string;
}

/** Where openid-client's strategy keeps its state on the request (`req.session[SESSION_KEY]`). */
const SESSION_KEY = 'oidc';

/** The callback request as the guard prepares it: the provider, its strategy and the state from the cookie. */
export interface OidcCallbackRequest extends FastifyRequest {
  session?: Record<string, AuthorizationState | undefined>;
  oidcSignIn?: { provider: IdentityProviderConfig; strategy: ProviderStrategy; redirectUri: string; interaction?: string };
}

type TokenResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
type Verify = (req: OidcCallbackRequest, tokens: TokenResponse, verified: (...args: unknown[]) => void) => void;

/**
 * openid-client's Passport strategy for one provider, with `state` and `nonce` always sent (the
 * library adds them only when PKCE or the response type needs them) and the start of the flow left
 * to the controller (Passport's redirect writes to a Node response, which Fastify's reply is not).
 */
class ProviderStrategy extends OpenIdClientStrategy {
  override authorizationRequestParams(req: never, options: never): URLSearchParams {
    const params = new URLSearchParams(
      super.authorizationRequestParams(req, options) as URLSearchParams | Record<string, string> | undefined,
    );
    params.set('state', oidc.randomState());
    params.set('nonce', oidc.randomNonce());
    return params;
  }

  override shouldInitiateAuthRequest(): boolean {
    return false;
  }

  /** Only the callback's query is read: the redirect URI itself comes from the sealed state (`callbackURL`). */
  override currentUrl(req: never): URL {
    return new URL((req as FastifyRequest).url, 'http://callback.invalid');
  }

  /** The authorization URL, and the state to keep until the callback (PKCE verifier, state, nonce). */
  async authorizationUrl(redirectUri: string): Promise<{ url: string; state: AuthorizationState }> {
    const request = { session: {} as Record<string, AuthorizationState> };
    const url = await new Promise<string>((resolve, reject) => {
      const run = Object.assign(Object.create(this) as this, { redirect: resolve, error: reject, fail: reject });
      void (run as unknown as { authorizationRequest(req: unknown, options: unknown): Promise<void> }).authorizationRequest(request, {
        callbackURL: redirectUri,
      });
    });
    return { url, state: request.session[SESSION_KEY] };
  }
}

/** The Passport strategy base named 'oidc': hands each callback to its provider's openid-client strategy. */
class ProviderDispatch {
  constructor(readonly verify: Verify) {}

  authenticate(this: ProviderDispatch & PassportActions, req: OidcCallbackRequest, options: Record<string, unknown>): void {
    const target = req.oidcSignIn;
    if (!target) return this.error(new Error('no identity provider prepared for this request'));
    const run = Object.assign(Object.create(target.strategy) as ProviderStrategy, {
      success: this.success.bind(this),
      fail: this.fail.bind(this),
      error: this.error.bind(this),
      redirect: this.redirect.bind(this),
      pass: this.pass.bind(this),
    });
    (run.authenticate as (req: unknown, options: unknown) => void).call(run, req, { ...options, callbackURL: target.redirectUri });
  }
}

interface PassportActions {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(error: unknown): void;
  redirect(url: string, status?: number): void;
  pass(): void;
}

/**
 * Sign-in through an enterprise identity provider as a Passport strategy behind an @nestjs/passport
 * guard (OidcCallbackGuard): openid-client (OpenID-certified) checks the authorization response
 * (state, `iss`, PKCE, the ID token's signature, issuer, audience, nonce and expiry); `validate`
 * then resolves the account and issues our tokens.
 */
@Injectable()
export class OidcStrategy extends PassportStrategy(ProviderDispatch, 'oidc') {
  private readonly strategies = new Map<string, Promise<ProviderStrategy>>();

  constructor(
    private readonly providers: IdentityProviders,
    private readonly signIn: IdentitySignIn,
  ) {
    super();
  }

  /** The provider's openid-client strategy (built on its discovered configuration, once). */
  forProvider(provider: IdentityProviderConfig): Promise<ProviderStrategy> {
    let strategy = this.strategies.get(provider.name);
    if (!strategy) {
      strategy = this.providers
        .configuration(provider)
        .then(
          (config) =>
            new ProviderStrategy(
              { config, name: `oidc-${provider.name}`, sessionKey: SESSION_KEY, scope: provider.scopes.join(' '), passReqToCallback: true },
              this.verify as never,
            ),
        );
      strategy.catch(() => this.strategies.delete(provider.name));
      this.strategies.set(provider.name, strategy);
    }
    return strategy;
  }

  /**
   * Passport's verify step: the IdP's verified tokens → the account → our tokens (LoginResponseDto),
   * or, for a sign-in started on the OAuth sign-in page, where its browser continues.
   */
  async validate(req: OidcCallbackRequest, tokens: TokenResponse): Promise<LoginResponseDto | InteractionContinuation> {
    const { provider, interaction } = req.oidcSignIn!;
    if (interaction) return { continueAt: await this.signIn.completeInteraction(provider, tokens, actorOf(req), interaction) };
    return this.signIn.complete(provider, tokens, actorOf(req));
  }
}

export type { ProviderStrategy };
