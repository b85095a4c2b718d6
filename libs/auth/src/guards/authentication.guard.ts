import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import {
  ACCESS_DECLARED_KEY,
  AppException,
  holdsAll,
  INTERACTIVE_ONLY_KEY,
  IS_PUBLIC_KEY,
  Principal,
  REQUIRED_PERMISSIONS_KEY,
  REQUIRED_ROLES_KEY,
  Role,
} from '@app/core';
import { interactiveLoginRequired } from '../auth.errors';
import { Authenticator } from '../edge/authenticator';

/**
 * The global guard: every route needs a valid access token unless it is `@Public()`, so a
 * route that forgets to say anything fails closed. Per request the Authenticator (shared with the
 * MCP transports) checks the token, that its session and its user are still active (both cached,
 * invalidated on change) and builds the principal from the user's *current* roles and
 * permissions; then the guard
 * enforces `@InteractiveOnly` (no API keys), `@Roles` (any of) and `@RequirePermissions` (all
 * of). A route that declares no access rule at all is refused (RouteAccessCheck stops the boot
 * before that can happen).
 */
@Injectable()
export class AuthenticationGuard implements CanActivate {
  private readonly rules = new WeakMap<object, WeakMap<object, AccessRule>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: Authenticator,
  ) {}

  /**
   * Answered at once (no promise) when the Authenticator decides from memory (a known token, its
   * session and user cached), else once it has read what it needs; a refusal is thrown either way
   * (Nest's guard runner awaits whatever this returns).
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const rule = this.ruleOf(context);
    if (rule.isPublic) return true;
    if (!rule.declared) throw AppException.forbidden();
    // Fail closed for transports this guard cannot read credentials from (WebSocket, RPC): their
    // handlers must be @Public() and authenticate by other means (e.g. at connection time).
    if (context.getType() !== 'http') return false;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = this.authenticator.authenticateRequest(request);
    return principal instanceof Promise ? principal.then((known) => admit(request, rule, known)) : admit(request, rule, principal);
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
}

/** The authenticated request against its route's rule: the principal goes on the request, or a 403 is thrown. */
function admit(request: FastifyRequest, rule: AccessRule, principal: Principal): true {
  request.principal = principal;
  if (rule.interactiveOnly && principal.via !== 'jwt') throw interactiveLoginRequired();
  if (rule.roles.length > 0 && !rule.roles.some((role) => principal.roles.includes(role))) throw AppException.forbidden();
  if (!holdsAll(principal.permissions, rule.permissions)) throw AppException.forbidden();
  return true;
}

interface AccessRule {
  isPublic: boolean;
  declared: boolean;
  interactiveOnly: boolean;
  roles: Role[];
  permissions: string[];
}
