import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { AuthService, LoginResponseDto } from '@app/auth';
import { Actor, APP_CONFIG, AppConfig, AppException, IdentityProviderConfig, InteractionSignIns } from '@app/core';
import { UnitOfWork } from '@app/database';
import { UsersService } from '@app/users';
import { emailOf, IdpClaims, subjectOf } from '../claims-mapping';
import { IdentityAccounts, ResolvedIdentity } from '../identity-accounts.service';
import { IdentityProviders } from '../identity-providers';
import { IdentityRefusal, signInFailed } from '../identity.errors';
import { AuthorizationState, SignInStateCookie } from './oidc-state';

/** What starts a sign-in: the provider's strategy, building the authorization URL and the state to keep. */
export interface AuthorizationRequests {
  authorizationUrl(redirectUri: string): Promise<{ url: string; state: AuthorizationState }>;
}

type TokenResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/**
 * The two ends of a sign-in through an identity provider: the redirect URI it comes back to, and
 * what a verified callback does — resolve the account (IdentityAccounts' linking rules) and open a
 * session exactly like POST /auth/login (session row, refresh token, `auth.login` record, in one
 * transaction with the account's changes). A refusal is audited (`auth.idp.refused`) and answered
 * with its Error body.
 */
@Injectable()
export class IdentitySignIn {
  private readonly logger = new Logger(IdentitySignIn.name);
  private readonly allowedHosts: ReadonlySet<string>;

  constructor(
    private readonly providers: IdentityProviders,
    private readonly accounts: IdentityAccounts,
    private readonly auth: AuthService,
    private readonly users: UsersService,
    private readonly unitOfWork: UnitOfWork,
    private readonly audit: AuditService,
    readonly stateCookie: SignInStateCookie,
    private readonly interactions: InteractionSignIns,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.allowedHosts = new Set(config.mcp.allowedHosts);
  }

  /**
   * The callback URL registered at the IdP: configured, or this request's origin when its host is
   * one the server answers for (MCP_ALLOWED_HOSTS); the IdP still accepts only registered URIs.
   */
  redirectUriOf(provider: IdentityProviderConfig, request: FastifyRequest): string {
    if (provider.redirectUri) return provider.redirectUri;
    const hostname = request.hostname.toLowerCase();
    if (!this.allowedHosts.has(hostname)) {
      throw AppException.validation([{ field: 'host', message: 'This host is not one the server answers for (MCP_ALLOWED_HOSTS)' }]);
    }
    return `${request.protocol}://${request.host}${SignInStateCookie.pathOf(provider.name)}`;
  }

  /**
   * Sets the state cookie; the URL to send the browser to. `interaction`: the OAuth interaction
   * (its uid) this sign-in finishes, sealed in the state with the rest.
   */
  async start(
    provider: IdentityProviderConfig,
    strategy: AuthorizationRequests,
    request: FastifyRequest,
    reply: FastifyReply,
    interaction?: string,
  ): Promise<string> {
    const redirectUri = this.redirectUriOf(provider, request);
    const { url, state } = await strategy.authorizationUrl(redirectUri);
    await this.stateCookie.set(reply, request, provider.name, {
      authorization: state,
      redirectUri,
      ...(interaction ? { interaction } : {}),
    });
    return url;
  }

  /** A REST sign-in: a session opened exactly like POST /auth/login, and its tokens. */
  async complete(provider: IdentityProviderConfig, tokens: TokenResponse, actor: Actor): Promise<LoginResponseDto> {
    const claims = await this.claimsOf(provider, tokens);
    const signIn = await this.refusalsAudited(provider, claims, actor, async () => {
      const { signIn, resolved } = await this.unitOfWork.run(async (tx) => {
        const resolved = await this.accounts.resolve(tx, provider, claims, actor, { syncAccess: true });
        const signIn = await this.auth.openVerifiedSignIn(tx, resolved.user, actor, signInDetails(provider, resolved));
        return { signIn, resolved };
      });
      if (resolved.accessChanged) await this.users.invalidate(resolved.user.id);
      return signIn;
    });
    return this.auth.tokensForVerifiedSignIn(signIn);
  }

  /**
   * A sign-in started on the OAuth sign-in page (interaction `uid`): the same linking rules, role
   * mapping and refusals as `complete`, the sign-in page's `auth.login` record (no REST session:
   * the grant opens its own), then the interaction's login is finished as that account. The URL
   * the browser continues at (the authorization endpoint, then consent).
   */
  async completeInteraction(provider: IdentityProviderConfig, tokens: TokenResponse, actor: Actor, uid: string): Promise<string> {
    const interactions = this.interactions.registered;
    if (!interactions || !(await interactions.waitingForSignIn(uid))) {
      throw signInFailed('This sign-in has expired or is already finished: return to your application and start again');
    }
    const claims = await this.claimsOf(provider, tokens);
    const userId = await this.refusalsAudited(provider, claims, actor, async () => {
      const resolved = await this.unitOfWork.run(async (tx) => {
        const resolved = await this.accounts.resolve(tx, provider, claims, actor, { syncAccess: true });
        await this.auth.recordVerifiedSignIn(tx, resolved.user.id, actor, signInDetails(provider, resolved));
        return resolved;
      });
      if (resolved.accessChanged) await this.users.invalidate(resolved.user.id);
      return resolved.user.id;
    });
    // RFC 8176 `fed`: authenticated by a federated identity provider.
    return interactions.finishSignIn(uid, userId, ['fed']);
  }

  /** Runs a sign-in; an identity the linking rules refuse is audited (`auth.idp.refused`) before the refusal goes on. */
  private async refusalsAudited<T>(provider: IdentityProviderConfig, claims: IdpClaims, actor: Actor, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof IdentityRefusal) {
        await this.audit.recordStandalone(
          auditEvent(AuditAction.AUTH_IDP_REFUSED, actor, {
            userId: null,
            result: 'failure',
            details: { reason: error.reason, provider: provider.name, subject: subjectOf(claims) ?? null, email: emailOf(claims) ?? null },
          }),
        );
      }
      throw error;
    }
  }

  /** The ID token's claims (verified by openid-client), completed by userinfo where the IdP has one. */
  private async claimsOf(provider: IdentityProviderConfig, tokens: TokenResponse): Promise<IdpClaims> {
    const idClaims = (tokens.claims() ?? {}) as IdpClaims;
    const subject = subjectOf(idClaims);
    const config = await this.providers.configuration(provider);
    if (!subject || !config.serverMetadata().userinfo_endpoint) return idClaims;
    try {
      // fetchUserInfo checks the answer's `sub` is the ID token's.
      const info = (await oidc.fetchUserInfo(config, tokens.access_token, subject)) as IdpClaims;
      return { ...info, ...idClaims, ...pick(info, provider.rolesClaim), sub: subject };
    } catch (error) {
      this.logger.warn(
        { provider: provider.name, err: { message: (error as Error).message } },
        'Userinfo request failed; using the ID token alone',
      );
      return idClaims;
    }
  }
}

/** How the `auth.login` record says the account signed in. */
function signInDetails(provider: IdentityProviderConfig, resolved: ResolvedIdentity): Record<string, unknown> {
  return { method: 'oidc', provider: provider.name, created: resolved.created, linked: resolved.linked };
}

/** The roles claim from userinfo when the ID token lacks it (groups are often left out of ID tokens). */
function pick(info: IdpClaims, claim: string): IdpClaims {
  const top = claim.split('.')[0];
  return Object.hasOwn(info, top) ? { [top]: info[top] } : {};
}
