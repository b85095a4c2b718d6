import { Injectable } from '@nestjs/common';

/**
 * What a bearer-token verifier other than our own access tokens learnt from a token it accepted:
 * whose it is, and how far it reaches. The Authenticator turns it into a Principal: it loads the
 * user's current state (an inactive user is refused), checks the session when one is named, and
 * narrows the user's effective permissions to `permissions` when given (a token's scopes).
 */
export interface ExternalBearerIdentity {
  userId: string;
  /** The gateway session this token belongs to (an OAuth grant's session): checked like an access token's `sid`. */
  sessionId?: string;
  /** The most this token may do (permissions derived from its scopes); absent = the user's effective permissions. */
  permissions?: readonly string[];
  /** Which kind of verifier accepted it: our authorization server, or an enterprise identity provider. */
  via: 'oauth' | 'idp';
  /** The OAuth client (or IdP client) the token was issued to, for audit. */
  clientId?: string;
  /** The OAuth scopes the token carries, for step-up (`insufficient_scope`) decisions. */
  scopes?: readonly string[];
}

/** Where the credential is being used: the canonical URL of the resource (an MCP endpoint), for audience checks. */
export interface BearerUse {
  /** e.g. `https://gw.example.com/api/v1/mcp` or `…/api/v1/contexts/<id>/mcp`; undefined for REST routes. */
  resource?: string;
}

/**
 * A verifier of bearer tokens that are not our own access tokens or API keys. `verify` answers null
 * when the token is not one of its own (wrong issuer or format: the next verifier is asked) and
 * throws the contract's 401 (`invalidToken()` of @app/auth, or an AppException) when it is its own
 * but invalid (expired, wrong audience, bad signature, revoked).
 */
export interface BearerTokenVerifier {
  readonly name: string;
  verify(token: string, use: BearerUse): Promise<ExternalBearerIdentity | null>;
}

/**
 * The registry through which libs above auth (the OAuth authorization server, enterprise identity
 * providers) plug their verifiers into the one Authenticator every transport calls, without auth
 * importing them (the lib graph points down). Register in `onModuleInit`.
 */
@Injectable()
export class BearerTokenVerifiers {
  private readonly verifiers: BearerTokenVerifier[] = [];

  register(verifier: BearerTokenVerifier): void {
    if (this.verifiers.some((known) => known.name === verifier.name)) throw new Error(`bearer verifier ${verifier.name} registered twice`);
    this.verifiers.push(verifier);
  }

  get all(): readonly BearerTokenVerifier[] {
    return this.verifiers;
  }
}
