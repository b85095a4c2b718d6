import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig, Clock } from '@app/core';

/** What a sealed requestState is bound to: a retry must come from the same user, for the same tool. */
export interface RequestStateBinding {
  userId: string;
  toolId: string;
  /** The upstream (provider) that issued the state. */
  upstream: string;
}

/**
 * A call the gateway holds open for an agent's answers (a 2025-era upstream asked in the middle of
 * it; see HeldCalls): which one, which round of questions the state answers, and which replica holds it.
 */
export interface HeldCallRef {
  id: string;
  round: number;
  replica: string;
}

/** The upstream's own requestState of a round, or none (an InputRequiredResult may carry only inputRequests); or a held call. */
interface SealedContent {
  /** The upstream's requestState, byte for byte. */
  s?: string;
  /** A held call: its id, round and replica. */
  h?: [string, number, string];
  /** Expiry, epoch milliseconds. */
  e: number;
}

/** How long an agent has to answer a round (the SDK's legacy shim allows a leg 10 minutes; a person may be slow). */
export const REQUEST_STATE_TTL_MS = 30 * 60_000;
const VERSION = 'g1';
const IV_BYTES = 12;

/**
 * The requestState the gateway hands agents in an InputRequiredResult (protocol revision
 * 2026-07-28): the upstream's own requestState inside AES-256-GCM (key derived from
 * ENCRYPTION_KEY by HKDF, for this purpose only), with the user, tool and upstream as associated
 * data and an expiry inside. An agent can neither read nor alter it, nor replay it as another user,
 * for another tool, or after it expired: the upstream only ever sees a state it issued, returned
 * by the user it issued it to. An agent that sends a state of its own making gets -32602.
 */
@Injectable()
export class RequestStateSeal {
  private readonly key: Buffer;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(config.secrets.encryptionKey, 'utf8'), Buffer.alloc(0), 'mcp-request-state', 32));
  }

  seal(binding: RequestStateBinding, upstreamState: string | undefined): string {
    return this.sealContent(binding, {
      e: this.clock.nowMs() + REQUEST_STATE_TTL_MS,
      ...(upstreamState !== undefined ? { s: upstreamState } : {}),
    });
  }

  /** The state of one round of a held call: valid for `ttlMs` (the hold's own bound), for this binding only. */
  sealHeld(binding: RequestStateBinding, held: HeldCallRef, ttlMs: number): string {
    return this.sealContent(binding, { e: this.clock.nowMs() + ttlMs, h: [held.id, held.round, held.replica] });
  }

  private sealContent(binding: RequestStateBinding, content: SealedContent): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(associatedData(binding));
    const body = Buffer.concat([cipher.update(JSON.stringify(content), 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  /**
   * The upstream's requestState inside `sealed` (undefined when the round had none), or the held
   * call it names. Throws when the state was not sealed by this gateway's key for this binding, or
   * has expired.
   */
  open(binding: RequestStateBinding, sealed: string): { upstreamState: string | undefined; held?: HeldCallRef } {
    const dot = sealed.indexOf('.');
    if (dot < 0 || sealed.slice(0, dot) !== VERSION) throw new Error('not a gateway request state');
    const raw = Buffer.from(sealed.slice(dot + 1), 'base64url');
    if (raw.length < IV_BYTES + 17) throw new Error('request state too short');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(associatedData(binding));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + 16));
    const content = JSON.parse(
      Buffer.concat([decipher.update(raw.subarray(IV_BYTES + 16)), decipher.final()]).toString('utf8'),
    ) as SealedContent;
    if (typeof content.e !== 'number' || content.e < this.clock.nowMs()) throw new Error('request state expired');
    const h = content.h;
    if (Array.isArray(h) && typeof h[0] === 'string' && typeof h[1] === 'number' && typeof h[2] === 'string') {
      return { upstreamState: undefined, held: { id: h[0], round: h[1], replica: h[2] } };
    }
    return { upstreamState: typeof content.s === 'string' ? content.s : undefined };
  }
}

function associatedData(binding: RequestStateBinding): Buffer {
  return Buffer.from(JSON.stringify([binding.userId, binding.toolId, binding.upstream]), 'utf8');
}
