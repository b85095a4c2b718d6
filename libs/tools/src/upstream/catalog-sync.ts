import { Injectable, Logger } from '@nestjs/common';
import { ToolCatalogService } from '../catalog/tool-catalog.service';

/**
 * Brings the catalogue up to date after an upstream's tools changed (connected, reconnected,
 * `list_changed`, a definition approved). Requests coalesce: at most one reconciliation runs and
 * one waits; every request made while one waits is served by that one, which starts after the
 * request was made, so no change is missed and a burst of changes costs two passes, not N.
 */
@Injectable()
export class CatalogSync {
  private readonly logger = new Logger(CatalogSync.name);
  private running: Promise<void> | null = null;
  private waiting: Promise<void> | null = null;

  constructor(private readonly catalog: ToolCatalogService) {}

  /** Resolves once a reconciliation that started after this call has finished (it never rejects). */
  request(): Promise<void> {
    if (this.waiting) return this.waiting;
    const before = this.running ?? Promise.resolve();
    const next: Promise<void> = before.then(async () => {
      this.waiting = null;
      this.running = next;
      try {
        // The first reconciliation is the catalogue's own, at bootstrap; ours follow it.
        await this.catalog.whenReady();
        await this.catalog.reconcile();
      } catch (error) {
        this.logger.warn({ err: error }, 'Tool catalogue reconciliation after an upstream change failed');
      } finally {
        if (this.running === next) this.running = null;
      }
    });
    this.waiting = next;
    return next;
  }
}
