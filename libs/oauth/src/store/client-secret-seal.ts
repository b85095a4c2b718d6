import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Where a sealed secret is kept in a client's stored metadata (never `client_secret`). */
const SEALED = 'client_secret_sealed';

/**
 * Confidential clients' secrets at rest: AES-256-GCM under a key derived from ENCRYPTION_KEY (HKDF,
 * its own purpose), the client id bound as associated data (a sealed secret cannot be moved to
 * another client). The provider library compares the presented secret with the plain one, so it
 * is sealed on the way into `oauth_store` and opened on the way out, never stored in the clear.
 */
export class ClientSecretSeal {
  private readonly key: Buffer;

  constructor(encryptionKey: string) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(encryptionKey, 'utf8'), Buffer.alloc(0), 'oauth-client-secret', 32));
  }

  /** The metadata to store: `client_secret` replaced by its sealed form. */
  seal(clientId: string, metadata: Record<string, unknown>): Record<string, unknown> {
    const { client_secret: secret, ...rest } = metadata;
    if (typeof secret !== 'string') return metadata;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(clientId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    const sealed = [FORMAT, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join(
      '.',
    );
    return { ...rest, [SEALED]: sealed };
  }

  /** The metadata the library reads: the secret opened (throws when it was altered, moved or sealed under another key). */
  open(clientId: string, stored: Record<string, unknown>): Record<string, unknown> {
    const { [SEALED]: sealed, ...rest } = stored;
    if (typeof sealed !== 'string') return stored;
    const [format, iv, tag, ciphertext] = sealed.split('.');
    if (format !== FORMAT || !iv || !tag || ciphertext === undefined) throw new Error('Unrecognised sealed client secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(clientId, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const secret = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    return { ...rest, client_secret: secret };
  }
}
