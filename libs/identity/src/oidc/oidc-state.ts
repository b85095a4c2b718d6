import { hkdfSync } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EncryptJWT, jwtDecrypt } from 'jose';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG, AppConfig } from '@app/core';

/** What openid-client's Passport strategy keeps between the redirect to the IdP and the callback. */
export interface AuthorizationState {
  code_verifier: string;
  state?: string;
  nonce?: string;
  max_age?: number;
}

/**
 * The sealed cookie's content: the strategy's state, the redirect URI the code is bound to, and
 * for a sign-in started on the OAuth sign-in page, the uid of the interaction it finishes.
 */
export interface SignInState {
  authorization: AuthorizationState;
  redirectUri: string;
  interaction?: string;
}

/** A sign-in must come back within this time. */
const STATE_TTL_SEC = 600;

/**
 * The sign-in state (PKCE verifier, state, nonce) between the redirect to the IdP and its callback,
 * kept in the browser as an encrypted, authenticated, short-lived cookie (JWE, dir + A256GCM, key
 * derived from ENCRYPTION_KEY; jose): no server-side store, works on every replica, unreadable and
 * unforgeable by the browser, bound to one provider, never logged (the logger redacts cookies).
 * HttpOnly, SameSite=Lax (the IdP's redirect back is a top-level GET), Secure on https, and scoped
 * to the provider's callback path.
 */
@Injectable()
export class SignInStateCookie {
  private readonly key: Uint8Array;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.key = new Uint8Array(hkdfSync('sha256', config.secrets.encryptionKey, 'secure-mcp-server', 'idp-sign-in-state', 32));
  }

  static nameOf(provider: string): string {
    return `smcp_oidc_${provider.replace(/-/g, '_')}`;
  }

  static pathOf(provider: string): string {
    return `/api/v1/auth/oidc/${provider}/callback`;
  }

  async set(reply: FastifyReply, request: FastifyRequest, provider: string, state: SignInState): Promise<void> {
    const sealed = await new EncryptJWT({ s: state })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt()
      .setExpirationTime(`${STATE_TTL_SEC}s`)
      .setAudience(`idp-sign-in:${provider}`)
      .encrypt(this.key);
    reply.header('set-cookie', cookie(SignInStateCookie.nameOf(provider), sealed, provider, STATE_TTL_SEC, request.protocol === 'https'));
  }

  /** The state of this provider's sign-in, and the cookie cleared (single use); null when absent, expired or forged. */
  async take(reply: FastifyReply, request: FastifyRequest, provider: string): Promise<SignInState | null> {
    const name = SignInStateCookie.nameOf(provider);
    reply.header('set-cookie', cookie(name, '', provider, 0, request.protocol === 'https'));
    const sealed = cookieValue(request.headers.cookie, name);
    if (!sealed) return null;
    try {
      const { payload } = await jwtDecrypt(sealed, this.key, {
        audience: `idp-sign-in:${provider}`,
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      const state = payload.s as SignInState | undefined;
      const valid =
        state &&
        typeof state.redirectUri === 'string' &&
        typeof state.authorization?.code_verifier === 'string' &&
        (state.interaction === undefined || typeof state.interaction === 'string');
      return valid ? state : null;
    } catch {
      return null;
    }
  }
}

function cookie(name: string, value: string, provider: string, maxAgeSec: number, secure: boolean): string {
  return `${name}=${value}; Path=${SignInStateCookie.pathOf(provider)}; Max-Age=${maxAgeSec}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
