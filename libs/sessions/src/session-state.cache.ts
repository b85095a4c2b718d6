import { Injectable } from '@nestjs/common';

/** What the per-request check remembers about an active session. */
export interface CachedSession {
  userId: string;
  /** Last request seen (in memory; written to the row at most once per revalidation). */
  lastActivityMs: number;
  /** When the row was last read, so every replica re-reads it now and then. */
  checkedAtMs: number;
}

/**
 * The cheap half of "is this session still active": remembered active sessions, and a deny
 * list that an ended session joins at once (before its transaction even commits: failing
 * closed is the safe side). `deny` resolves once every replica has been told (see
 * ClusterSessionStateCache, the binding).
 */
export abstract class SessionStateCache {
  abstract get(sessionId: string): CachedSession | undefined;
  abstract set(sessionId: string, session: CachedSession): void;
  abstract deny(...sessionIds: string[]): void | Promise<void>;
  abstract isDenied(sessionId: string): boolean;
}

const MAX_ACTIVE = 100_000;
const MAX_DENIED = 100_000;
/**
 * A denial only has to outlive reads that started before the session ended; after that the
 * row itself says "terminated". An hour is far longer than any such read.
 */
const DENY_RETENTION_MS = 3_600_000;

@Injectable()
export class InMemorySessionStateCache extends SessionStateCache {
  private readonly active = new Map<string, CachedSession>();
  private readonly denied = new Map<string, number>();

  get(sessionId: string): CachedSession | undefined {
    return this.active.get(sessionId);
  }

  set(sessionId: string, session: CachedSession): void {
    if (this.denied.has(sessionId)) return;
    if (this.active.size >= MAX_ACTIVE) this.active.clear();
    this.active.set(sessionId, session);
  }

  deny(...sessionIds: string[]): void {
    for (const sessionId of sessionIds) {
      this.active.delete(sessionId);
      if (this.denied.size >= MAX_DENIED) this.prune();
      this.denied.set(sessionId, Date.now() + DENY_RETENTION_MS);
    }
  }

  isDenied(sessionId: string): boolean {
    return this.denied.has(sessionId);
  }

  /** Forgets the remembered active sessions (denials stay): each is read from its row again. */
  forgetActive(): void {
    this.active.clear();
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, until] of this.denied) if (until <= now) this.denied.delete(id);
    // Still full: drop the oldest half. Those sessions are terminated in the database, which
    // the next read of their row sees.
    if (this.denied.size >= MAX_DENIED) {
      let drop = Math.floor(this.denied.size / 2);
      for (const id of this.denied.keys()) {
        if (drop-- <= 0) break;
        this.denied.delete(id);
      }
    }
  }
}
