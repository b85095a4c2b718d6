import { Injectable } from '@nestjs/common';

/** Counts the monitoring tool reports but does not own: the pipeline and the session layer feed them. */
@Injectable()
export class ToolRuntimeStats {
  private inFlight = 0;
  private openSessionsSource: () => number | Promise<number> = () => 0;

  /** Call when a tool execution starts; call the returned function exactly once when it ends. */
  executionStarted(): () => void {
    this.inFlight += 1;
    let finished = false;
    return () => {
      if (finished) return;
      finished = true;
      this.inFlight -= 1;
    };
  }

  get executionsInFlight(): number {
    return this.inFlight;
  }

  /** Sessions live in the database, so their count comes from whoever owns them. */
  useOpenSessionsSource(source: () => number | Promise<number>): void {
    this.openSessionsSource = source;
  }

  async openSessions(): Promise<number> {
    return await this.openSessionsSource();
  }
}
