import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The sign-in and consent forms' anti-forgery values, bound to one interaction (its uid) under a
 * server key: a page of another interaction, or another site, cannot produce them. The interaction
 * itself is bound to the browser by the provider's SameSite cookie.
 */
export class FormTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('secure-mcp-server oauth forms v1').digest();
  }

  csrf(uid: string): string {
    return this.mac(`csrf\0${uid}`);
  }

  checkCsrf(uid: string, presented: unknown): boolean {
    return typeof presented === 'string' && equal(presented, this.csrf(uid));
  }

  /** After the password: who may now give their second factor in this interaction, until `expiresAtMs`. */
  mfaTicket(uid: string, userId: string, expiresAtMs: number): string {
    return `${userId}.${expiresAtMs}.${this.mac(`mfa\0${uid}\0${userId}\0${expiresAtMs}`)}`;
  }

  /** The user id a ticket stands for, if it is this interaction's and still valid. */
  openMfaTicket(uid: string, ticket: unknown, nowMs: number): string | null {
    if (typeof ticket !== 'string') return null;
    const match = /^([A-Za-z0-9_-]{1,128})\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(ticket);
    if (!match) return null;
    const [, userId, expires, mac] = match;
    if (!equal(mac, this.mac(`mfa\0${uid}\0${userId}\0${expires}`))) return null;
    return Number(expires) > nowMs ? userId : null;
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }
}

function equal(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
