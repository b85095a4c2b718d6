import { Inject, Injectable } from '@nestjs/common';
import { createSecretKey, randomBytes } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { APP_CONFIG, AppConfig, Clock, Role, ROLES } from '@app/core';

export const ACCESS_TOKEN_TYPE = 'access';

/** The claims of our access tokens. */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  /** Session id: the token works only while this session is active. */
  sid: string;
  roles: Role[];
  typ: typeof ACCESS_TOKEN_TYPE;
  iat: number;
  exp: number;
  /** Not before: we never set it, but a token that carries one is honoured (RFC 7519 §4.1.5). */
  nbf?: number;
  jti: string;
}

export interface SignedAccessToken {
  token: string;
  expiresIn: number;
}

/** Tolerated difference between our clock and an `iat` set by another replica. */
const IAT_LEEWAY_SEC = 60;
const MAX_TOKEN_LENGTH = 4096;
/** Verified tokens remembered per process (about 0.5 KB each). */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * HS256 JWTs signed and verified by @nestjs/jwt (jsonwebtoken) with a KeyObject (node's HMAC, no
 * per-call key parsing: a string secret measured ~50x slower to verify). Everything is pinned: the
 * header must be exactly the one we write (so `alg: none` or any other algorithm never reaches the
 * signature check), the algorithm list is HS256 alone, and issuer, audience, type and expiry must
 * match. Expiry follows the injectable Clock (`clockTimestamp`).
 */
@Injectable()
export class AccessTokenService {
  private readonly jwt: JwtService;
  private readonly header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlSec: number;
  /** Tokens already verified (exact string -> claims), oldest first; see verify. */
  private readonly verified = new Map<string, AccessTokenClaims>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.issuer = config.auth.jwtIssuer;
    this.audience = config.auth.jwtAudience;
    this.ttlSec = config.auth.accessTokenTtlSec;
    this.jwt = new JwtService({
      secret: createSecretKey(Buffer.from(config.secrets.jwtSecret, 'utf8')),
      signOptions: { algorithm: 'HS256' },
      verifyOptions: { algorithms: ['HS256'], issuer: this.issuer, audience: this.audience },
    });
  }

  sign(subject: { userId: string; sessionId: string; roles: Role[] }): SignedAccessToken {
    const iat = Math.floor(this.clock.nowMs() / 1000);
    const claims: AccessTokenClaims = {
      iss: this.issuer,
      aud: this.audience,
      sub: subject.userId,
      sid: subject.sessionId,
      roles: subject.roles,
      typ: ACCESS_TOKEN_TYPE,
      iat,
      exp: iat + this.ttlSec,
      jti: randomBytes(12).toString('base64url'),
    };
    return { token: this.jwt.sign(claims), expiresIn: this.ttlSec };
  }

  /**
   * The claims of a valid access token, or null for anything else (never throws). A token whose
   * signature and claims have been checked once is remembered (the exact token string, bounded
   * to VERIFIED_CACHE_SIZE): a client sends the same token with every request, and the HMAC and
   * JSON parse were the largest share of a cached read's authentication. Only a byte-identical
   * token can hit; its time checks (exp, iat, nbf) run on every call, and whether its session and
   * user are still active is the caller's check, every request.
   */
  verify(token: string): AccessTokenClaims | null {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
    const known = this.verified.get(token);
    if (known) {
      if (this.timely(known)) return known;
      this.verified.delete(token);
      return null;
    }
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== this.header) return null;
    const now = Math.floor(this.clock.nowMs() / 1000);
    let claims: Partial<AccessTokenClaims>;
    try {
      // Signature, algorithm, issuer, audience, exp and nbf (no leeway), at the Clock's time.
      claims = this.jwt.verify<Partial<AccessTokenClaims>>(token, { clockTimestamp: now });
    } catch {
      return null;
    }
    if (!claims || typeof claims !== 'object') return null;
    const wellFormed =
      claims.typ === ACCESS_TOKEN_TYPE &&
      claims.iss === this.issuer &&
      claims.aud === this.audience &&
      typeof claims.sub === 'string' &&
      claims.sub.length > 0 &&
      typeof claims.sid === 'string' &&
      claims.sid.length > 0 &&
      Array.isArray(claims.roles) &&
      claims.roles.every((role) => ROLES.includes(role)) &&
      typeof claims.exp === 'number' &&
      typeof claims.iat === 'number' &&
      (claims.nbf === undefined || typeof claims.nbf === 'number');
    if (!wellFormed) return null;
    const valid = claims as AccessTokenClaims;
    if (!this.timely(valid)) return null;
    // Shared by every later request with this token: nobody may change it.
    Object.freeze(valid.roles);
    this.remember(token, Object.freeze(valid));
    return valid;
  }

  /** Not expired, not issued in the future (beyond the leeway), not before its nbf. */
  private timely(claims: AccessTokenClaims): boolean {
    const now = Math.floor(this.clock.nowMs() / 1000);
    // No leeway on nbf: our tokens carry none, so any given one is checked strictly.
    return now < claims.exp && claims.iat <= now + IAT_LEEWAY_SEC && (claims.nbf === undefined || claims.nbf <= now);
  }

  private remember(token: string, claims: AccessTokenClaims): void {
    // Oldest first out (a Map keeps insertion order).
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, claims);
  }
}
