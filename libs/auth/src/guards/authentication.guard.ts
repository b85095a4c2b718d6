import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ACCESS_DECLARED_KEY, AppException, clientInfo, holdsAll, INTERACTIVE_ONLY_KEY, IS_PUBLIC_KEY, Principal, REQUIRED_PERMISSIONS_KEY, REQUIRED_ROLES_KEY, resolvePermissions, Role } from '@app/core';
import { SessionService } from '@app/sessions';
import { UserAccessState, UsersService } from '@app/users';
import { ApiKeyService } from '../api-keys/api-key.service';
import { looksLikeApiKey } from '../api-keys/api-key-secret';
import { authenticationRequired, credentialsInUrl, interactiveLoginRequired, invalidToken } from '../auth.errors';
import { AccessTokenService } from '../tokens/access-token.service';
import { bearerToken } from '../tokens/bearer-token';

/**
 * The global guard: every route needs a valid access token unless it is `@Public()`, so a
 * route that forgets to say anything fails closed. Per request it checks the token, that its
 * session is still active and that the user is still active (both cached, invalidated on
 * change), builds the principal from the user's *current* roles and permissions, and then
 * enforces `@InteractiveOnly` (no API keys), `@Roles` (any of) and `@RequirePermissions` (all
 * of). A route that declares no access rule at all is refused (RouteAccessCheck stops the boot
 * before that can happen).
 */
@Injectable()
export class AuthenticationGuard implements CanActivate {
  private readonly rules = new WeakMap<object, WeakMap<object, AccessRule>>();
  /** Effective permissions per cached user state (a change replaces the state object). */
  private readonly effective = new WeakMap<UserAccessState, readonly string[]>();

  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: AccessTokenService,
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly apiKeys: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const rule = this.ruleOf(context);
    if (rule.isPublic) return true;
    if (!rule.declared) throw AppException.forbidden();
    // Fail closed for transports this guard cannot read credentials from (WebSocket, RPC): their
    // handlers must be @Public() and authenticate by other means (e.g. at connection time).
    if (context.getType() !== 'http') return false;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = await this.authenticate(request);
    request.principal = principal;

    if (rule.interactiveOnly && principal.via !== 'jwt') throw interactiveLoginRequired();
    if (rule.roles.length > 0 && !rule.roles.some((role) => principal.roles.includes(role))) throw AppException.forbidden();
    if (!holdsAll(principal.permissions, rule.permissions)) throw AppException.forbidden();
    return true;
  }

  /** A handler's access rule; route metadata never changes, so it is read once per handler. */
  private ruleOf(context: ExecutionContext): AccessRule {
    const handler = context.getHandler();
    const controller = context.getClass();
    // Keyed by class too: an inherited handler can sit under classes with different metadata.
    let rules = this.rules.get(controller);
    if (!rules) {
      rules = new WeakMap();
      this.rules.set(controller, rules);
    }
    let rule = rules.get(handler);
    if (!rule) {
      const targets = [handler, controller];
      rule = {
        isPublic: this.reflector.getAllAndOverride<boolean>(IS_PUBLIC_KEY, targets) === true,
        declared: this.reflector.getAllAndOverride<boolean>(ACCESS_DECLARED_KEY, targets) === true,
        interactiveOnly: this.reflector.getAllAndOverride<boolean>(INTERACTIVE_ONLY_KEY, targets) === true,
        roles: this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES_KEY, targets) ?? [],
        permissions: this.reflector.getAllAndMerge<string[]>(REQUIRED_PERMISSIONS_KEY, targets) ?? [],
      };
      rules.set(handler, rule);
    }
    return rule;
  }

  private permissionsOf(user: UserAccessState): readonly string[] {
    let permissions = this.effective.get(user);
    if (!permissions) {
      permissions = resolvePermissions(user.roles, user.permissions);
      this.effective.set(user, permissions);
    }
    return permissions;
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
      permissions: [...this.permissionsOf(user)],
      via: 'jwt',
    };
  }
}

interface AccessRule {
  isPublic: boolean;
  declared: boolean;
  interactiveOnly: boolean;
  roles: Role[];
  permissions: string[];
}

/** Query parameters that carry a credential by convention (RFC 6750 `access_token` and friends). */
const URL_CREDENTIAL_PARAMS = new Set(['access_token', 'token', 'api_key', 'apikey', 'api-key']);

function hasCredentialInUrl(query: unknown): boolean {
  if (!query || typeof query !== 'object') return false;
  return Object.keys(query).some((name) => URL_CREDENTIAL_PARAMS.has(name.toLowerCase()));
}
