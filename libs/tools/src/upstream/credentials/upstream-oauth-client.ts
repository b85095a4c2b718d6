import { Injectable, Logger } from '@nestjs/common';
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/client';
import * as oidc from 'openid-client';
import type { UpstreamConfig } from '../upstream-config';
import type { UserOAuthAuth } from '../upstream-auth';

/** The tokens of one user's connection, as sealed in upstream_credentials (never stored in plaintext). */
export interface UpstreamTokens {
  accessToken: string;
  refreshToken: string | undefined;
  /** Seconds the access token lives, when the authorization server said. */
  expiresInS: number | undefined;
}

/** The authorization server refused the refresh token (revoked, expired): the user must connect again. */
export class RefreshRefusedError extends Error {}

/** The authorization server (or its discovery) could not be used: a passing failure, not the user's. */
export class AuthorizationServerError extends Error {}

/** A started authorization: where to send the browser, and what the callback must check (kept server-side). */
export interface StartedAuthorization {
  url: string;
  state: string;
  codeVerifier: string;
}

interface Discovered {
  config: oidc.Configuration;
  resource: string;
}

/** How long a discovery is reused before the metadata is read again. */
const DISCOVERY_TTL_MS = 10 * 60_000;

/**
 * The gateway as each user's OAuth client of an upstream declared `auth: user-oauth`, on
 * openid-client (OpenID-certified): the authorization server is found through the upstream's
 * RFC 9728 protected-resource metadata (the MCP SDK's discovery) or the configured issuer, its
 * endpoints through OpenID / RFC 8414 discovery; authorization code with PKCE (S256) and an RFC
 * 8707 `resource` on the authorization, token and refresh requests, so every token is bound to
 * the upstream.
 */
@Injectable()
export class UpstreamOAuthClient {
  private readonly logger = new Logger(UpstreamOAuthClient.name);
  private readonly discovered = new Map<string, { at: number; value: Promise<Discovered> }>();

  async authorize(config: UpstreamConfig, auth: UserOAuthAuth, redirectUri: string): Promise<StartedAuthorization> {
    const { config: client, resource } = await this.discover(config, auth);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const parameters: Record<string, string> = {
      redirect_uri: redirectUri,
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      resource,
      ...(auth.scope ? { scope: auth.scope } : {}),
    };
    return { url: oidc.buildAuthorizationUrl(client, parameters).href, state, codeVerifier };
  }

  /** The authorization server's callback (`currentUrl`, with its code): the user's tokens. */
  async redeem(config: UpstreamConfig, auth: UserOAuthAuth, currentUrl: URL, state: string, codeVerifier: string): Promise<UpstreamTokens> {
    const { config: client, resource } = await this.discover(config, auth);
    const response = await oidc.authorizationCodeGrant(
      client,
      currentUrl,
      { pkceCodeVerifier: codeVerifier, expectedState: state, idTokenExpected: false },
      { resource },
    );
    return tokensOf(response, undefined);
  }

  /** New tokens for a refresh token; RefreshRefusedError when the authorization server refuses it. */
  async refresh(config: UpstreamConfig, auth: UserOAuthAuth, refreshToken: string): Promise<UpstreamTokens> {
    const { config: client, resource } = await this.discover(config, auth);
    try {
      return tokensOf(await oidc.refreshTokenGrant(client, refreshToken, { resource }), refreshToken);
    } catch (error) {
      const code = (error as { error?: unknown }).error;
      if (code === 'invalid_grant') throw new RefreshRefusedError('the authorization server refused the refresh token');
      this.logger.warn(
        { upstream: config.name, reason: typeof code === 'string' ? code : (error as Error).message },
        'Refreshing an upstream token failed',
      );
      throw new AuthorizationServerError(typeof code === 'string' ? code : 'no usable answer');
    }
  }

  /**
   * Revokes a token at the upstream's authorization server (RFC 7009, with its type hint):
   * `revoked`; `no-endpoint` when the server names no revocation endpoint; `unsupported` when it
   * does not revoke tokens of this type (RFC 7009 §2.2.1: e.g. self-contained JWT access tokens,
   * which stay valid until they expire). Throws AuthorizationServerError when it refuses otherwise
   * or cannot be reached.
   */
  async revoke(
    config: UpstreamConfig,
    auth: UserOAuthAuth,
    token: string,
    hint: 'refresh_token' | 'access_token',
  ): Promise<'revoked' | 'no-endpoint' | 'unsupported'> {
    const { config: client } = await this.discover(config, auth);
    if (!client.serverMetadata().revocation_endpoint) return 'no-endpoint';
    try {
      await oidc.tokenRevocation(client, token, { token_type_hint: hint });
      return 'revoked';
    } catch (error) {
      const code = (error as { error?: unknown }).error;
      if (code === 'unsupported_token_type') return 'unsupported';
      throw new AuthorizationServerError(typeof code === 'string' ? code : 'no usable answer');
    }
  }

  private discover(config: UpstreamConfig, auth: UserOAuthAuth): Promise<Discovered> {
    const cached = this.discovered.get(config.name);
    if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.value;
    const value = this.discoverNow(config, auth);
    this.discovered.set(config.name, { at: Date.now(), value });
    value.catch(() => this.discovered.delete(config.name));
    return value;
  }

  private async discoverNow(config: UpstreamConfig, auth: UserOAuthAuth): Promise<Discovered> {
    if (config.transport !== 'http') throw new AuthorizationServerError('user-oauth needs an http upstream');
    let issuer = auth.issuer;
    let resource = auth.resource ?? config.url;
    try {
      if (!issuer) {
        const metadata = await discoverOAuthProtectedResourceMetadata(config.url);
        issuer = metadata.authorization_servers?.[0];
        if (!auth.resource && metadata.resource) resource = metadata.resource;
      }
    } catch (error) {
      throw new AuthorizationServerError(`the upstream's protected-resource metadata could not be read (${(error as Error).message})`);
    }
    if (!issuer) throw new AuthorizationServerError('the upstream names no authorization server (RFC 9728) and none is configured');
    const server = new URL(issuer);
    const clientAuth = auth.clientSecret ? oidc.ClientSecretBasic(auth.clientSecret) : oidc.None();
    // Plain http only to this machine (tests, a sidecar); anything else must be https.
    const local = server.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(server.hostname);
    const options = local ? { execute: [oidc.allowInsecureRequests] } : undefined;
    try {
      const client = await oidc
        .discovery(server, auth.clientId, undefined, clientAuth, options)
        .catch(() => oidc.discovery(server, auth.clientId, undefined, clientAuth, { ...options, algorithm: 'oauth2' }));
      return { config: client, resource };
    } catch (error) {
      throw new AuthorizationServerError(`the authorization server's metadata could not be read (${(error as Error).message})`);
    }
  }
}

function tokensOf(
  response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  previousRefresh: string | undefined,
): UpstreamTokens {
  const expiresIn = response.expiresIn();
  return {
    accessToken: response.access_token,
    // A server that does not rotate refresh tokens keeps the old one valid.
    refreshToken: response.refresh_token ?? previousRefresh,
    expiresInS: typeof expiresIn === 'number' ? expiresIn : undefined,
  };
}
