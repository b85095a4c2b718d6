import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** Event-loop delay, sampled continuously; reset each read so it reflects recent load. */
@Injectable()
export class EventLoopMonitor implements OnModuleDestroy {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor() {
    this.histogram.enable();
  }

  read(): { meanMs: number; p99Ms: number; maxMs: number } {
    const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100;
    const figures = {
      meanMs: ms(Number.isNaN(this.histogram.mean) ? 0 : this.histogram.mean),
      p99Ms: ms(this.histogram.percentile(99)),
      maxMs: ms(this.histogram.max),
    };
    this.histogram.reset();
    return figures;
  }

  onModuleDestroy(): void {
    this.histogram.disable();
  }
}
