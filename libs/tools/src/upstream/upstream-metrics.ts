import { Injectable, OnModuleInit } from '@nestjs/common';
import { stateGauge } from '@app/health';
import { UpstreamRegistry } from './upstream.registry';

export const UPSTREAM_CONNECTED_METRIC = 'upstream_connected';

/**
 * `upstream_connected{upstream}`: 1 while this process holds a working connection to the declared
 * upstream MCP server, 0 while it connects, is down (reconnecting) or stopped. Read at scrape time
 * from the providers' own state.
 */
@Injectable()
export class UpstreamMetrics implements OnModuleInit {
  constructor(private readonly registry: UpstreamRegistry) {}

  onModuleInit(): void {
    stateGauge<'upstream'>({
      name: UPSTREAM_CONNECTED_METRIC,
      help: 'Whether this process is connected to the upstream MCP server (1) or not (0: connecting, down or stopped), by upstream',
      labelNames: ['upstream'],
      read: (gauge) => {
        gauge.reset();
        for (const provider of this.registry.all()) {
          const status = provider.status();
          gauge.set({ upstream: status.name }, status.state === 'connected' ? 1 : 0);
        }
      },
    });
  }
}
