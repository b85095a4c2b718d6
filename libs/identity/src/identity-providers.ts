import { Inject, Injectable, Logger } from '@nestjs/common';
import { createRemoteJWKSet, JWTVerifyGetKey } from 'jose';
import * as oidc from 'openid-client';
import { APP_CONFIG, AppConfig, IdentityProviderConfig } from '@app/core';
import { providerUnavailable, unknownProvider } from './identity.errors';

/** How long one discovery or JWKS request may take. */
const FETCH_TIMEOUT_SEC = 5;
/** Fetched keys are used this long before the JWKS is fetched again (an unknown key id refetches sooner). */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** A failed discovery is retried no sooner than this. */
const DISCOVERY_RETRY_MS = 5_000;

/**
 * The configured identity providers, found by name (sign-in URLs) or by issuer (tokens), with
 * their OpenID discovery (openid-client; fetched on first use and kept) and their JWKS (jose's
 * remote key set: cached, refetched on an unknown key id at most once per cooldown).
 */
@Injectable()
export class IdentityProviders {
  private readonly logger = new Logger(IdentityProviders.name);
  private readonly byName = new Map<string, IdentityProviderConfig>();
  private readonly byIssuer = new Map<string, IdentityProviderConfig>();
  private readonly discovered = new Map<string, Promise<oidc.Configuration>>();
  private readonly failedAt = new Map<string, number>();
  private readonly keySets = new Map<string, JWTVerifyGetKey>();
  private readonly jwksCooldownMs: number;
  private readonly requiredDomains: Readonly<Record<string, string>>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.requiredDomains = config.identity.requiredDomains;
    for (const provider of config.identity.providers) {
      this.byName.set(provider.name, provider);
      this.byIssuer.set(provider.issuer, provider);
    }
    this.jwksCooldownMs = config.identity.jwksCooldownMs;
  }

  get all(): IdentityProviderConfig[] {
    return [...this.byName.values()];
  }

  /** The provider an email domain's accounts must sign in with (IDP_<NAME>_REQUIRE_FOR_DOMAINS), if any. */
  requiredFor(domain: string): IdentityProviderConfig | undefined {
    return Object.hasOwn(this.requiredDomains, domain) ? this.byName.get(this.requiredDomains[domain]) : undefined;
  }

  /** A provider whose access tokens are accepted directly (it has audiences), by the token's `iss`. */
  forIssuer(issuer: string): IdentityProviderConfig | undefined {
    const provider = this.byIssuer.get(issuer);
    return provider && provider.audiences.length > 0 ? provider : undefined;
  }

  /** A provider users sign in through (it has a client id); 404 otherwise. */
  forSignIn(name: string): IdentityProviderConfig {
    const provider = this.byName.get(name);
    if (!provider?.clientId) throw unknownProvider();
    return provider;
  }

  /** The provider's OpenID configuration (discovered once; a failure is retried after a pause); 503 when unreachable. */
  configuration(provider: IdentityProviderConfig): Promise<oidc.Configuration> {
    let pending = this.discovered.get(provider.name);
    if (!pending) {
      const failed = this.failedAt.get(provider.name);
      if (failed !== undefined && Date.now() - failed < DISCOVERY_RETRY_MS) return Promise.reject(providerUnavailable());
      pending = this.discover(provider);
      this.discovered.set(provider.name, pending);
      pending.catch(() => {
        this.discovered.delete(provider.name);
        this.failedAt.set(provider.name, Date.now());
      });
    }
    return pending.catch(() => Promise.reject(providerUnavailable()));
  }

  /** The provider's signing keys (jose remote JWKS: cached, rotation picked up on an unknown `kid`). */
  async keys(provider: IdentityProviderConfig): Promise<JWTVerifyGetKey> {
    const known = this.keySets.get(provider.name);
    if (known) return known;
    const jwksUri = (await this.configuration(provider)).serverMetadata().jwks_uri;
    if (!jwksUri) throw providerUnavailable();
    const keys = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: FETCH_TIMEOUT_SEC * 1000,
      cooldownDuration: this.jwksCooldownMs,
      cacheMaxAge: JWKS_MAX_AGE_MS,
    });
    this.keySets.set(provider.name, keys);
    return keys;
  }

  private async discover(provider: IdentityProviderConfig): Promise<oidc.Configuration> {
    const clientAuth = provider.clientSecret ? oidc.ClientSecretBasic(provider.clientSecret) : oidc.None();
    try {
      return await oidc.discovery(
        new URL(provider.issuer),
        // Token-only providers never use the client: discovery still wants an id.
        provider.clientId ?? 'secure-mcp-server',
        undefined,
        clientAuth,
        {
          timeout: FETCH_TIMEOUT_SEC,
          // ID tokens' signatures are checked against the IdP's JWKS too, not only their claims.
          execute: provider.allowHttp ? [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks] : [oidc.enableNonRepudiationChecks],
        },
      );
    } catch (error) {
      // The message names the URL and what was wrong; the secret is never part of it.
      this.logger.warn({ provider: provider.name, err: { message: (error as Error).message } }, 'Identity provider discovery failed');
      throw error;
    }
  }
}
