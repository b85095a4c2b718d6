import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  Actor,
  BearerTokenVerifiers,
  BearerUse,
  clientInfo,
  ExternalBearerIdentity,
  IDP_SUBJECT_TOKEN,
  Principal,
  resolvePermissions,
} from '@app/core';
import { SessionService } from '@app/sessions';
import { UserAccessState, UsersService } from '@app/users';
import { ApiKeyService } from '../api-keys/api-key.service';
import { looksLikeApiKey } from '../api-keys/api-key-secret';
import { authenticationRequired, credentialsInUrl, invalidToken } from '../auth.errors';
import { AccessTokenClaims, AccessTokenService } from '../tokens/access-token.service';
import { bearerTokenOf } from '../tokens/bearer-token';

/** What a transport read off its request: the Authorization header, the query, and where it came from. */
export interface Credentials {
  authorization: string | undefined;
  /** The URL's query parameters: a credential there is refused (it ends up in logs and histories). */
  query: unknown;
  client: Pick<Actor, 'ipAddress' | 'userAgent'>;
  /** Where the credential is used (the MCP endpoint's canonical URL), for audience-bound tokens. */
  use?: BearerUse;
}

/**
 * Turns a request's credential (an access token or an agent API key, both as `Authorization:
 * Bearer`) into a Principal with its effective permissions, for every transport: the global guard
 * (REST), the MCP HTTP endpoint and the MCP WebSocket upgrade all call this, and a long-lived
 * connection re-checks its principal with `refresh`. Throws the contract's 401s.
 */
@Injectable()
export class Authenticator {
  /** Effective permissions per cached user state (a change replaces the state object). */
  private readonly effective = new WeakMap<UserAccessState, readonly string[]>();

  constructor(
    private readonly tokens: AccessTokenService,
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly apiKeys: ApiKeyService,
    private readonly verifiers: BearerTokenVerifiers,
  ) {}

  /**
   * A REST request's principal (the global guard): the same checks as `authenticate`, answered at
   * once (no promise) when our own access token's session and user are decided from memory, as
   * they are between revalidations; it may throw the 401s instead of rejecting. Await it.
   */
  authenticateRequest(request: FastifyRequest): Principal | Promise<Principal> {
    return this.principalFor({ authorization: request.headers.authorization, query: request.query, client: clientInfo(request) });
  }

  /**
   * The principal of a credential; rejects with the 401s. Credentials are never taken from the URL: a
   * request that puts one there is refused even if it also sends the header.
   */
  async authenticate(credentials: Credentials): Promise<Principal> {
    return this.principalFor(credentials);
  }

  private principalFor(credentials: Credentials): Principal | Promise<Principal> {
    if (hasCredentialInUrl(credentials.query)) throw credentialsInUrl();
    const token = bearerTokenOf(credentials.authorization);
    if (!token) throw authenticationRequired();
    if (looksLikeApiKey(token)) return this.authenticateApiKey(token, credentials.client);
    const claims = this.tokens.verify(token);
    if (!claims) return this.authenticateExternal(token, credentials.use ?? {});
    // The session first, then the user, as one awaited step after the other; a promise only
    // where one of them has to be read.
    const active = this.sessions.isActive(claims.sid);
    return active instanceof Promise ? active.then((yes) => this.withUser(claims, yes)) : this.withUser(claims, active);
  }

  private async authenticateApiKey(token: string, client: Credentials['client']): Promise<Principal> {
    const principal = await this.apiKeys.authenticate(token, client);
    if (!principal) throw invalidToken();
    return principal;
  }

  private withUser(claims: AccessTokenClaims, sessionActive: boolean): Principal | Promise<Principal> {
    if (!sessionActive) throw invalidToken();
    const user = this.users.accessState(claims.sub);
    return user instanceof Promise ? user.then((state) => this.ownPrincipal(claims, state)) : this.ownPrincipal(claims, user);
  }

  private ownPrincipal(claims: AccessTokenClaims, user: UserAccessState | null): Principal {
    if (!user || user.status !== 'active') throw invalidToken();
    return {
      userId: user.id,
      email: user.email,
      sessionId: claims.sid,
      roles: [...user.roles],
      permissions: [...this.permissionsOf(user)],
      via: 'jwt',
    };
  }

  /**
   * A bearer token that is not one of our access tokens: the first registered verifier (our OAuth
   * authorization server, an enterprise identity provider) that recognises it decides. The user's
   * current state still applies, and the token's own reach narrows the user's permissions.
   */
  private async authenticateExternal(token: string, use: BearerUse): Promise<Principal> {
    for (const verifier of this.verifiers.all) {
      const identity = await verifier.verify(token, use);
      if (identity) {
        const principal = await this.principalOf(identity);
        // The IdP's own token, for token exchange with it as subject (never serialised: see IDP_SUBJECT_TOKEN).
        if (identity.via === 'idp') principal[IDP_SUBJECT_TOKEN] = token;
        return principal;
      }
    }
    throw invalidToken();
  }

  private async principalOf(identity: ExternalBearerIdentity): Promise<Principal> {
    if (identity.sessionId && !(await this.sessions.isActive(identity.sessionId))) throw invalidToken();
    const user = await this.users.accessState(identity.userId);
    if (!user || user.status !== 'active') throw invalidToken();
    const own = this.permissionsOf(user);
    const cap = identity.permissions;
    return {
      userId: user.id,
      email: user.email,
      sessionId: identity.sessionId ?? '',
      roles: [...user.roles],
      permissions: cap ? own.filter((permission) => cap.includes(permission)) : [...own],
      via: identity.via,
      clientId: identity.clientId,
      scopes: identity.scopes,
    };
  }

  /**
   * A principal authenticated earlier (a WebSocket at its upgrade, a ticket's issuer), as of now:
   * null once its session or user is no longer active. Permissions are the user's current ones
   * (an API key's stay within the key's subset).
   */
  async refresh(original: Principal): Promise<Principal | null> {
    if (original.sessionId && !(await this.sessions.isActive(original.sessionId))) return null;
    const user = await this.users.accessState(original.userId);
    if (!user || user.status !== 'active') return null;
    const own = this.permissionsOf(user);
    const narrowed = original.via === 'api_key' || original.via === 'oauth' || original.via === 'idp';
    const permissions = narrowed ? own.filter((permission) => original.permissions.includes(permission)) : [...own];
    return { ...original, email: user.email, roles: [...user.roles], permissions };
  }

  private permissionsOf(user: UserAccessState): readonly string[] {
    let permissions = this.effective.get(user);
    if (!permissions) {
      permissions = resolvePermissions(user.roles, user.permissions);
      this.effective.set(user, permissions);
    }
    return permissions;
  }
}

/** Query parameters that carry a credential by convention (RFC 6750 `access_token` and friends). */
const URL_CREDENTIAL_PARAMS = new Set(['access_token', 'token', 'api_key', 'apikey', 'api-key']);

/** Whether a query (an object of parameters, or URLSearchParams) carries a credential. */
export function hasCredentialInUrl(query: unknown): boolean {
  if (query instanceof URLSearchParams) return [...query.keys()].some((name) => URL_CREDENTIAL_PARAMS.has(name.toLowerCase()));
  if (!query || typeof query !== 'object') return false;
  return Object.keys(query).some((name) => URL_CREDENTIAL_PARAMS.has(name.toLowerCase()));
}
