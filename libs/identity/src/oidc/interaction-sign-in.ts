import { ArgumentsHost, Catch, ExceptionFilter, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { InteractionSignIns } from '@app/core';
import { IdentityProviders } from '../identity-providers';
import { InteractionSignInFailure } from '../identity.errors';
import { IdentitySignIn } from './identity-sign-in.service';
import { OidcStrategy } from './oidc.strategy';

/** An identity provider the OAuth sign-in page offers ("Sign in with <displayName>"). */
export interface SignInProviderOption {
  name: string;
  displayName: string;
}

/**
 * "Sign in with <provider>" on the OAuth sign-in page: the providers set up for sign-in, and the
 * start of one's flow bound to the page's interaction. The interaction's uid is sealed in the
 * state cookie with the PKCE verifier, state and nonce (so it is tied to this browser and cannot
 * be changed), and the IdP comes back to the provider's usual callback, which finishes that
 * interaction instead of answering JSON.
 */
@Injectable()
export class InteractionIdpSignIn {
  constructor(
    private readonly providers: IdentityProviders,
    private readonly strategy: OidcStrategy,
    private readonly signIn: IdentitySignIn,
  ) {}

  get options(): SignInProviderOption[] {
    return this.providers.all
      .filter((provider) => provider.clientId !== undefined)
      .map((provider) => ({ name: provider.name, displayName: provider.displayName }));
  }

  /** Sets the state cookie for interaction `uid`; the IdP URL to send the browser to (404 for an unknown provider). */
  async start(name: string, uid: string, request: FastifyRequest, reply: FastifyReply): Promise<string> {
    const provider = this.providers.forSignIn(name);
    return this.signIn.start(provider, await this.strategy.forProvider(provider), request, reply, uid);
  }
}

/** The callback's refusals for a sign-in started on the OAuth sign-in page: the sign-in pages' error page, with the refusal's status. */
@Catch(InteractionSignInFailure)
export class InteractionSignInFailureFilter implements ExceptionFilter {
  constructor(private readonly interactions: InteractionSignIns) {}

  catch(failure: InteractionSignInFailure, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (reply.sent) return;
    const page = this.interactions.registered?.errorPage('Sign-in failed', failure.refusal.message);
    void reply
      .code(failure.refusal.getStatus())
      .header('content-type', page ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      .send(page ?? failure.refusal.message);
  }
}
