import type { Logger } from '@nestjs/common';

/** Logs the first failure of an outage and its end, not every failed call in between. */
export class OutageLog {
  private down = false;

  constructor(
    private readonly logger: Logger,
    private readonly downMessage: string,
    private readonly upMessage: string,
  ) {}

  get isDown(): boolean {
    return this.down;
  }

  failed(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.warn({ err: { message: error instanceof Error ? error.message : String(error) } }, this.downMessage);
  }

  recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.log(this.upMessage);
  }
}
