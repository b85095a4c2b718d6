import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { FastifyReply } from 'fastify';
import { AppException } from '@app/core';
import { IdentityProviders } from '../identity-providers';
import { InteractionSignInFailure, signInFailed } from '../identity.errors';
import { IdentitySignIn } from './identity-sign-in.service';
import { OidcCallbackRequest, OidcStrategy } from './oidc.strategy';

/**
 * The @nestjs/passport guard of the IdP callback: finds the provider, takes the sealed sign-in state
 * from its cookie (clearing it: one use), and runs the 'oidc' Passport strategy. Every failure is
 * the contract's Error body: 401 IDP_SIGN_IN_FAILED for a bad or stale response, the linking rules'
 * own codes for a refused identity.
 */
@Injectable()
export class OidcCallbackGuard extends AuthGuard('oidc') {
  constructor(
    private readonly providers: IdentityProviders,
    private readonly strategy: OidcStrategy,
    private readonly signIn: IdentitySignIn,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<OidcCallbackRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const provider = this.providers.forSignIn((request.params as { provider?: string }).provider ?? '');
    const state = await this.signIn.stateCookie.take(reply, request, provider.name);
    if (!state) throw signInFailed(`No sign-in in progress, or it expired: start again at GET /api/v1/auth/oidc/${provider.name}`);
    try {
      const error = new URLSearchParams(request.url.split('?')[1] ?? '').get('error');
      if (error) throw signInFailed(`${provider.displayName} refused the sign-in (${error.slice(0, 64)})`);
      request.session = { oidc: state.authorization };
      request.oidcSignIn = {
        provider,
        strategy: await this.strategy.forProvider(provider),
        redirectUri: state.redirectUri,
        interaction: state.interaction,
      };
      return (await super.canActivate(context)) as boolean;
    } catch (error) {
      // A sign-in started on the OAuth sign-in page is a browser's: it gets the error page, not JSON.
      if (state.interaction && error instanceof AppException) throw new InteractionSignInFailure(error);
      throw error;
    }
  }

  override handleRequest<T>(error: unknown, user: T, info: unknown): T {
    if (error instanceof AppException) throw error;
    if (error || !user) {
      const message = (info as { message?: unknown } | undefined)?.message;
      throw signInFailed(
        typeof message === 'string'
          ? `The identity provider's answer was refused: ${message}`
          : `The identity provider's answer was refused: ${error instanceof Error ? error.message : 'no account'}`,
      );
    }
    return user;
  }
}
