import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { ToolProvider } from '../provider/tool-provider';
import { TOOL_PROVIDERS } from '../tool-providers.token';

/**
 * Every ToolProvider declared under TOOL_PROVIDERS, in any module. Nest has no multi-providers,
 * but tokens are scoped per module, so each module may declare the token once and this registry
 * gathers all of them (an entry may be one provider or an array of them).
 */
@Injectable()
export class ToolProviderRegistry {
  private readonly logger = new Logger(ToolProviderRegistry.name);
  private providers: Map<string, ToolProvider> | undefined;

  constructor(private readonly discovery: DiscoveryService) {}

  all(): ToolProvider[] {
    return [...this.collect().values()];
  }

  get(name: string): ToolProvider | undefined {
    return this.collect().get(name);
  }

  private collect(): Map<string, ToolProvider> {
    if (this.providers) return this.providers;
    const found = new Map<string, ToolProvider>();
    for (const wrapper of this.discovery.getProviders()) {
      if (wrapper.token !== TOOL_PROVIDERS || !wrapper.instance) continue;
      const entries = (Array.isArray(wrapper.instance) ? wrapper.instance : [wrapper.instance]) as ToolProvider[];
      for (const provider of entries) {
        if (!isToolProvider(provider)) {
          this.logger.error(`A TOOL_PROVIDERS entry in ${wrapper.host?.name ?? 'a module'} is not a ToolProvider; ignored`);
          continue;
        }
        const existing = found.get(provider.name);
        if (existing && existing !== provider) {
          this.logger.error(`Two tool providers are named "${provider.name}"; the second is ignored`);
          continue;
        }
        found.set(provider.name, provider);
      }
    }
    this.providers = found;
    return found;
  }
}

function isToolProvider(value: unknown): value is ToolProvider {
  const candidate = value as Partial<ToolProvider> | null;
  return (
    !!candidate &&
    typeof candidate.name === 'string' &&
    typeof candidate.listTools === 'function' &&
    typeof candidate.execute === 'function'
  );
}
