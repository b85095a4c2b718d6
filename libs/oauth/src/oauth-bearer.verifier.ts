import { Inject, Injectable } from '@nestjs/common';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { invalidToken } from '@app/auth';
import { APP_CONFIG, AppConfig, BearerTokenVerifier, BearerUse, ExternalBearerIdentity } from '@app/core';
import { permissionsOfScopes } from './oauth-scopes';
import { OAuthIssuer } from './provider/oauth-issuer';
import { OAuthProvider } from './provider/oauth-provider';

/**
 * Accepts our authorization server's access tokens: JWTs (`typ: at+jwt`, RFC 9068) signed with
 * its key (algorithm pinned), from its issuer, unexpired, whose audience is exactly the MCP
 * endpoint they are used on (`use.resource`; on REST routes, which name no resource, they are
 * refused). The token's `sid` is the grant's gateway session, which the Authenticator checks;
 * its scopes cap the user's permissions. A token of another issuer is not ours (null: the next
 * verifier is asked).
 */
@Injectable()
export class OAuthBearerVerifier implements BearerTokenVerifier {
  readonly name = 'oauth';

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly issuer: OAuthIssuer,
    private readonly provider: OAuthProvider,
  ) {}

  async verify(token: string, use: BearerUse): Promise<ExternalBearerIdentity | null> {
    const issuer = this.issuer.value;
    if (!issuer) return null;
    let claimedIssuer: unknown;
    try {
      decodeProtectedHeader(token);
      claimedIssuer = decodeJwt(token).iss;
    } catch {
      return null;
    }
    if (claimedIssuer !== issuer) return null;
    if (!use.resource) throw invalidToken();
    const key = await this.provider.signingKey();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        issuer,
        audience: use.resource,
        algorithms: [key.alg],
        typ: 'at+jwt',
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'client_id'],
        clockTolerance: 5,
      }));
    } catch {
      throw invalidToken();
    }
    const { sub, sid, scope, client_id: clientId } = payload;
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof clientId !== 'string') throw invalidToken();
    // An audience list naming several resources would let one token reach several endpoints.
    if (Array.isArray(payload.aud) && payload.aud.length !== 1) throw invalidToken();
    const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
    return { userId: sub, sessionId: sid, permissions: permissionsOfScopes(scopes), via: 'oauth', clientId, scopes };
  }

  /** Whether the verifier is in use (the authorization server is enabled). */
  get enabled(): boolean {
    return this.config.oauth.enabled;
  }
}
