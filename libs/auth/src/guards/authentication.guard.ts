import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import {
  AppException,
  clientInfo,
  IS_PUBLIC_KEY,
  Principal,
  REQUIRED_PERMISSIONS_KEY,
  REQUIRED_ROLES_KEY,
  Role,
} from '@app/core';
import { SessionService } from '@app/sessions';
import { UsersService } from '@app/users';
import { ApiKeyService } from '../api-keys/api-key.service';
import { looksLikeApiKey } from '../api-keys/api-key-secret';
import { authenticationRequired, credentialsInUrl, invalidToken } from '../auth.errors';
import { holdsAll, resolvePermissions } from '../permissions';
import { AccessTokenService } from '../tokens/access-token.service';
import { bearerToken } from '../tokens/bearer-token';

/**
 * The global guard: every route needs a valid access token unless it is `@Public()`, so a
 * route that forgets to say anything fails closed. Per request it checks the token, that its
 * session is still active and that the user is still active (both cached, invalidated on
 * change), builds the principal from the user's *current* roles and permissions, and then
 * enforces `@Roles` (any of) and `@RequirePermissions` (all of).
 */
@Injectable()
export class AuthenticationGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: AccessTokenService,
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly apiKeys: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC_KEY, targets)) return true;
    // Fail closed for transports this guard cannot read credentials from (WebSocket, RPC): their
    // handlers must be @Public() and authenticate by other means (e.g. at connection time).
    if (context.getType() !== 'http') return false;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = await this.authenticate(request);
    request.principal = principal;

    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES_KEY, targets) ?? [];
    if (roles.length > 0 && !roles.some((role) => principal.roles.includes(role))) throw AppException.forbidden();
    const permissions = this.reflector.getAllAndMerge<string[]>(REQUIRED_PERMISSIONS_KEY, targets) ?? [];
    if (!holdsAll(principal.permissions, permissions)) throw AppException.forbidden();
    return true;
  }

  /**
   * The principal of a request's access token or agent API key (both as `Authorization: Bearer`);
   * throws the 401s. Credentials are never taken from the URL (they end up in logs and
   * histories): a request that puts one there is refused even if it also sends the header.
   */
  async authenticate(request: FastifyRequest): Promise<Principal> {
    if (hasCredentialInUrl(request.query)) throw credentialsInUrl();
    const token = bearerToken(request);
    if (!token) throw authenticationRequired();
    if (looksLikeApiKey(token)) {
      const principal = await this.apiKeys.authenticate(token, clientInfo(request));
      if (!principal) throw invalidToken();
      return principal;
    }
    const claims = this.tokens.verify(token);
    if (!claims) throw invalidToken();
    if (!(await this.sessions.isActive(claims.sid))) throw invalidToken();
    const user = await this.users.accessState(claims.sub);
    if (!user || user.status !== 'active') throw invalidToken();
    return {
      userId: user.id,
      email: user.email,
      sessionId: claims.sid,
      roles: [...user.roles],
      permissions: resolvePermissions(user.roles, user.permissions),
      via: 'jwt',
    };
  }
}

/** Query parameters that carry a credential by convention (RFC 6750 `access_token` and friends). */
const URL_CREDENTIAL_PARAMS = new Set(['access_token', 'token', 'api_key', 'apikey', 'api-key']);

function hasCredentialInUrl(query: unknown): boolean {
  if (!query || typeof query !== 'object') return false;
  return Object.keys(query).some((name) => URL_CREDENTIAL_PARAMS.has(name.toLowerCase()));
}
