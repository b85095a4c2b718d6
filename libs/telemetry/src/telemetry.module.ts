import { DynamicModule, Module, OnApplicationShutdown } from '@nestjs/common';
import type { TracingHandle } from './tracing';

export class TracingShutdown implements OnApplicationShutdown {
  constructor(private readonly handle: TracingHandle | null) {}

  /** The spans still batched are exported before the process exits (bounded by the exporter's timeout). */
  async onApplicationShutdown(): Promise<void> {
    await this.handle?.shutdown();
  }
}

/** Telemetry's place in the app: it owns the running tracer provider (if any) and flushes it on close. */
@Module({})
export class TelemetryModule {
  static forRoot(handle: TracingHandle | null): DynamicModule {
    return { module: TelemetryModule, providers: [{ provide: TracingShutdown, useValue: new TracingShutdown(handle) }] };
  }
}
