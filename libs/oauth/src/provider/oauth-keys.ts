import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

/** The authorization server's signing key: private JWK for the provider, public key for verification. */
export interface OAuthSigningKey {
  alg: 'ES256' | 'RS256';
  kid: string;
  privateJwk: JWK;
  publicKey: KeyObject;
}

/** The configured (or generated) PEM as the provider's keystore entry; its kid is its RFC 7638 thumbprint. */
export async function signingKeyOf(pem: string): Promise<OAuthSigningKey> {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  const alg = privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateJwk, publicKey };
}
