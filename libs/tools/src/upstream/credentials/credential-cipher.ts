import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@app/core';

const FORMAT = 'uc1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = 'upstream-credential';

interface Key {
  id: string;
  key: Buffer;
}

function keyOf(master: string): Key {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(master, 'utf8'), Buffer.alloc(0), HKDF_INFO, 32));
  // A public label of the key (not the key): which key a ciphertext needs, so rotation can pick it.
  const id = createHmac('sha256', key).update('key-id').digest('base64url').slice(0, 8);
  return { id, key };
}

/** What decrypting found: the plaintext, and whether it was made under an earlier key (re-encrypt it). */
export interface Opened {
  plaintext: string;
  stale: boolean;
}

/**
 * Upstream credentials at rest: AES-256-GCM under a key derived (HKDF, this purpose only) from
 * ENCRYPTION_KEY. The user and the upstream are the associated data, so a ciphertext copied to
 * another user's row or another upstream does not decrypt. Each ciphertext names its key's id:
 * keys listed in ENCRYPTION_KEY_PREVIOUS still open what they sealed (rotation), and the store
 * re-seals such a value under the current key when it is used.
 */
@Injectable()
export class CredentialCipher {
  private readonly current: Key;
  private readonly keys: Map<string, Key>;

  constructor(@Inject(APP_CONFIG) config: Pick<AppConfig, 'secrets'>) {
    this.current = keyOf(config.secrets.encryptionKey);
    this.keys = new Map([this.current, ...(config.secrets.previousEncryptionKeys ?? []).map(keyOf)].map((k) => [k.id, k]));
    this.keys.set(this.current.id, this.current);
  }

  seal(plaintext: string, userId: string, upstream: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associated(userId, upstream));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      FORMAT,
      this.current.id,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      ciphertext.toString('base64url'),
    ].join('.');
  }

  /** Throws when the value was altered, belongs to another user or upstream, or its key is not configured. */
  open(stored: string, userId: string, upstream: string): Opened {
    const [format, keyId, iv, tag, ciphertext] = stored.split('.');
    if (format !== FORMAT || !keyId || !iv || !tag || ciphertext === undefined) throw new Error('Unrecognised credential format');
    const key = this.keys.get(keyId);
    if (!key) throw new Error('The credential was encrypted under a key that is no longer configured');
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associated(userId, upstream));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    return { plaintext, stale: keyId !== this.current.id };
  }
}

function associated(userId: string, upstream: string): Buffer {
  return Buffer.from(`${HKDF_INFO}\n${userId}\n${upstream}`, 'utf8');
}
