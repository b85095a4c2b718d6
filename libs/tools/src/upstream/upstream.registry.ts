import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig, BackgroundJobs, Clock } from '@app/core';
import { ComponentHealth, HealthService } from '@app/health';
import { CatalogSync } from './catalog-sync';
import { UpstreamCredentialService } from './credentials/upstream-credential.service';
import type { UpstreamConfig } from './upstream-config';
import { UpstreamPinStore } from './upstream-pin.store';
import { UpstreamToolProvider } from './upstream-tool.provider';

/** The validated upstream declarations (from MCP_UPSTREAMS_FILE). */
export const UPSTREAM_CONFIGS = Symbol('UPSTREAM_CONFIGS');

/**
 * One UpstreamToolProvider per declared upstream: created here, registered as TOOL_PROVIDERS by
 * the module, started when the module initialises (after migrations: the database module is
 * global, so its hooks run first) and stopped at shutdown. Each upstream is a component of
 * /health/detailed.
 */
@Injectable()
export class UpstreamRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamRegistry.name);
  private readonly providers = new Map<string, UpstreamToolProvider>();

  constructor(
    @Inject(UPSTREAM_CONFIGS) configs: UpstreamConfig[],
    pins: UpstreamPinStore,
    sync: CatalogSync,
    clock: Clock,
    private readonly health: HealthService,
    @Inject(APP_CONFIG) appConfig: AppConfig,
    jobs: BackgroundJobs,
    credentials: UpstreamCredentialService,
  ) {
    const maxResultBytes = appConfig.upstreams.resultMaxBytes;
    for (const config of configs) {
      this.providers.set(
        config.name,
        new UpstreamToolProvider(config, { pins, requestReconcile: () => sync.request(), clock, maxResultBytes, jobs, credentials }),
      );
    }
  }

  onModuleInit(): void {
    this.health.register(async () => this.healthComponents());
    for (const provider of this.providers.values()) {
      const config = provider.config;
      if (config.transport === 'http' && Object.keys(config.headers).length > 0 && isPlainHttpToRemote(config.url)) {
        this.logger.warn(
          { upstream: config.name },
          `Upstream ${config.name} gets credentials over plain http to a non-loopback host; use https`,
        );
      }
      provider.start();
    }
    if (this.providers.size > 0) this.logger.log(`Upstream MCP servers: ${[...this.providers.keys()].join(', ')}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.providers.values()].map((provider) => provider.stop()));
  }

  all(): UpstreamToolProvider[] {
    return [...this.providers.values()];
  }

  get(name: string): UpstreamToolProvider | undefined {
    return this.providers.get(name);
  }

  /** `upstream:<name>` components: a connected upstream is healthy, any other state degrades (never fails) the gateway. */
  healthComponents(): Record<string, ComponentHealth> {
    const components: Record<string, ComponentHealth> = {};
    for (const provider of this.providers.values()) {
      const status = provider.status();
      components[`upstream:${status.name}`] = {
        status: status.state === 'connected' ? 'healthy' : 'degraded',
        name: status.name,
        transport: status.transport,
        state: status.state,
        toolCount: status.toolCount,
        pendingApproval: status.pendingApproval,
        lastError: status.lastError,
        lastConnectedAt: status.lastConnectedAt?.toISOString() ?? null,
        nextRetryAt: status.nextRetryAt?.toISOString() ?? null,
        failures: status.failures,
        // Extensions: the protocol era spoken to the upstream, and why it is not 2026-07-28 when the upstream failed it.
        era: status.era,
        eraFallback: status.eraFallback ? { reason: status.eraFallback.reason, at: status.eraFallback.at.toISOString() } : null,
      };
    }
    return components;
  }
}

function isPlainHttpToRemote(url: string): boolean {
  const parsed = new URL(url);
  return parsed.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname);
}
