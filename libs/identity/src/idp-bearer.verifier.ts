import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, JWTPayload } from 'jose';
import { invalidToken } from '@app/auth';
import {
  Actor,
  BearerTokenVerifier,
  BearerTokenVerifiers,
  BearerUse,
  ExternalBearerIdentity,
  IdentityProviderConfig,
  resolvePermissions,
} from '@app/core';
import { UnitOfWork } from '@app/database';
import { UsersService } from '@app/users';
import { hasClaim, IdpClaims, MappedAccess, mappedAccess } from './claims-mapping';
import { IdentityAccounts } from './identity-accounts.service';
import { IdentityProviders } from './identity-providers';
import { IdentityRefusal } from './identity.errors';

/** Identities resolved from tokens, kept so a busy agent's requests skip the database (bounded). */
const MAX_CACHED = 10_000;
/** How long a verified token is taken as verified (then its signature and claims are checked again). */
const VERIFIED_TTL_MS = 60_000;
/** Verified tokens kept (a busy gateway's agents; cleared whole when full). */
const MAX_VERIFIED = 5_000;

/** A bearer verifier does not see the request: records it writes (an account created, a link) name no client. */
const TOKEN_ACTOR: Actor = { ipAddress: null, userAgent: null };

interface CachedIdentity {
  userId: string;
  /** The mapped access last written for this identity (a token with other claims re-syncs). */
  access: string;
}

/**
 * Accepts an enterprise IdP's access tokens as bearer credentials on the MCP endpoints and the
 * REST API. A token is the IdP's when its (unverified) `iss` names a provider that lists audiences;
 * anything else is left to the next verifier (null). The IdP's token must then verify, or it is
 * refused with the contract's 401: signature by a key of the IdP's JWKS (jose: cached, refetched on
 * an unknown `kid` at most once per IDP_JWKS_COOLDOWN_MS), one of the provider's asymmetric
 * algorithms (never `none` nor HS*: a public key used as an HMAC secret cannot pass), the exact
 * issuer, one of the configured audiences, and `exp`/`nbf`. The identity (issuer + subject) must be
 * linked to an active account, or be linkable or creatable under the same rules as a sign-in; the
 * token reaches at most what its claims map to.
 */
@Injectable()
export class IdpBearerVerifier implements BearerTokenVerifier, OnModuleInit {
  readonly name = 'idp';
  private readonly logger = new Logger(IdpBearerVerifier.name);
  private readonly known = new Map<string, CachedIdentity>();
  private readonly resolving = new Map<string, Promise<string>>();
  private readonly verified = new Map<string, { identity: ExternalBearerIdentity; until: number }>();

  constructor(
    private readonly registry: BearerTokenVerifiers,
    private readonly providers: IdentityProviders,
    private readonly accounts: IdentityAccounts,
    private readonly users: UsersService,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  onModuleInit(): void {
    if (this.providers.all.some((provider) => provider.audiences.length > 0)) this.registry.register(this);
  }

  async verify(token: string, _use: BearerUse): Promise<ExternalBearerIdentity | null> {
    const now = Date.now();
    const known = this.verified.get(token);
    if (known && known.until > now) return known.identity;
    if (known) this.verified.delete(token);
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      return null; // not a JWT at all
    }
    const provider = typeof issuer === 'string' ? this.providers.forIssuer(issuer) : undefined;
    if (!provider) return null;
    // An unreachable IdP (discovery) is a 503, not a verdict on the token.
    const keys = await this.providers.keys(provider);
    let payload: JWTPayload;
    try {
      const alg = decodeProtectedHeader(token).alg;
      // Checked before any key is looked up: `none` and HMAC never reach the key set.
      if (typeof alg !== 'string' || !(provider.algorithms as readonly string[]).includes(alg))
        throw new errors.JOSEAlgNotAllowed(`alg ${String(alg)}`);
      ({ payload } = await jwtVerify(token, keys, {
        issuer: provider.issuer,
        audience: provider.audiences,
        algorithms: provider.algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: 30,
      }));
    } catch (error) {
      this.logger.debug({ provider: provider.name, reason: (error as Error).message }, 'IdP access token refused');
      throw invalidToken();
    }
    const identity = await this.identityOf(provider, payload);
    // An agent sends the same token on every request until it expires: verified (and its account
    // resolved) once, it is checked again at most every VERIFIED_TTL_MS, and never used past its exp.
    // The account's state (active, roles) is still read on every request by the Authenticator.
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    this.verified.set(token, { identity, until: Math.min(now + VERIFIED_TTL_MS, (payload.exp ?? 0) * 1000) });
    return identity;
  }

  private async identityOf(provider: IdentityProviderConfig, payload: JWTPayload): Promise<ExternalBearerIdentity> {
    const claims = payload as IdpClaims;
    // A token that carries the roles claim (even empty) reaches at most what it maps to, and its
    // mapping is written to the account; one without it keeps the account's stored access.
    const access = hasClaim(claims, provider.rolesClaim) ? mappedAccess(provider, claims) : undefined;
    const userId = await this.userOf(provider, claims, access);
    return {
      userId,
      via: 'idp',
      clientId: typeof payload.azp === 'string' ? payload.azp : typeof payload.client_id === 'string' ? payload.client_id : undefined,
      scopes: scopesOf(payload),
      permissions: access ? resolvePermissions(access.roles, access.permissions) : undefined,
    };
  }

  /** The account of (issuer, subject): cached, else resolved (linked, linked by verified email, or created) like a sign-in. */
  private async userOf(provider: IdentityProviderConfig, claims: IdpClaims, access: MappedAccess | undefined): Promise<string> {
    const key = `${provider.issuer}\n${String(claims.sub)}`;
    const signature = access ? JSON.stringify(access) : '';
    const cached = this.known.get(key);
    if (cached && (!access || cached.access === signature)) return cached.userId;
    // Concurrent first requests of one identity resolve it once.
    let pending = this.resolving.get(key);
    if (!pending) {
      pending = this.resolve(provider, claims, access !== undefined, key, signature).finally(() => this.resolving.delete(key));
      this.resolving.set(key, pending);
    }
    return pending;
  }

  private async resolve(
    provider: IdentityProviderConfig,
    claims: IdpClaims,
    syncAccess: boolean,
    key: string,
    signature: string,
  ): Promise<string> {
    try {
      const resolved = await this.unitOfWork.run((tx) => this.accounts.resolve(tx, provider, claims, TOKEN_ACTOR, { syncAccess }));
      if (resolved.accessChanged) await this.users.invalidate(resolved.user.id);
      if (this.known.size >= MAX_CACHED) this.known.clear();
      this.known.set(key, { userId: resolved.user.id, access: signature });
      return resolved.user.id;
    } catch (error) {
      if (error instanceof IdentityRefusal) {
        this.logger.debug({ provider: provider.name, reason: error.reason }, 'IdP access token has no usable account');
        throw invalidToken();
      }
      throw error;
    }
  }
}

function scopesOf(payload: JWTPayload): string[] | undefined {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  if (typeof payload.scp === 'string') return payload.scp.split(' ').filter(Boolean);
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  return undefined;
}
