import { createParamDecorator, ExecutionContext } from '@nestjs/common';

export type Role = 'admin' | 'developer' | 'user';
export const ROLES: readonly Role[] = ['admin', 'developer', 'user'];

/**
 * The enterprise IdP's access token the caller authenticated with (via 'idp'), kept under a symbol:
 * no JSON (logs, stored state, answers) ever carries it. Read only by token exchange with the
 * caller's IdP token as subject (issue 17); never sent to an upstream.
 */
export const IDP_SUBJECT_TOKEN: unique symbol = Symbol('idpSubjectToken');

/** Who is calling: set on the request by the global authentication guard. */
export interface Principal {
  userId: string;
  email: string;
  sessionId: string;
  roles: Role[];
  /** Effective permissions: the roles' defaults plus the user's own grants. */
  permissions: string[];
  /** How the caller authenticated: our access token, an agent API key, our OAuth server's token, an IdP's token. */
  via: 'jwt' | 'api_key' | 'oauth' | 'idp';
  /** The OAuth client a token was issued to (via 'oauth' | 'idp'). */
  clientId?: string;
  /** The OAuth scopes the token carries (via 'oauth' | 'idp'). */
  scopes?: readonly string[];
  /** The agent API key used (via 'api_key'). */
  apiKeyId?: string;
  /** The one context the credential is bound to (an API key created for a context), if any. */
  contextId?: string;
  /** See IDP_SUBJECT_TOKEN. */
  [IDP_SUBJECT_TOKEN]?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The authenticated caller of this request (the guard guarantees one on non-public routes). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal | undefined => {
  return ctx.switchToHttp().getRequest<{ principal?: Principal }>().principal;
});
