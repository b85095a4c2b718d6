import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/core';

export interface OriginRefusal {
  status: 403;
  message: string;
}

/**
 * DNS-rebinding and cross-site protection for the MCP endpoints (HTTP and WebSocket upgrades):
 * the Host header must name an allowed host, and an Origin header, when a browser sends one,
 * must be an allowed origin. Hosts compare by hostname (any port); origins by hostname, or as a
 * whole origin (scheme, host, port) when configured as one.
 */
@Injectable()
export class OriginPolicy {
  private readonly hosts: ReadonlySet<string>;
  private readonly originHosts: ReadonlySet<string>;
  private readonly exactOrigins: ReadonlySet<string>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.hosts = new Set(config.mcp.allowedHosts);
    this.originHosts = new Set(config.mcp.allowedOrigins.filter((entry) => !entry.includes('://')));
    this.exactOrigins = new Set(config.mcp.allowedOrigins.filter((entry) => entry.includes('://')).map((entry) => new URL(entry).origin));
  }

  /** Null when allowed, else why not. */
  check(host: string | undefined, origin: string | undefined): OriginRefusal | null {
    const hostname = hostnameOf(host);
    if (!hostname || !this.hosts.has(hostname)) return { status: 403, message: 'Forbidden: Host header is not allowed' };
    if (origin === undefined || origin === '') return null;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return { status: 403, message: 'Forbidden: Origin is not allowed' };
    }
    if (origin === 'null' || parsed.origin === 'null') return { status: 403, message: 'Forbidden: Origin is not allowed' };
    if (this.exactOrigins.has(parsed.origin) || this.originHosts.has(parsed.hostname.toLowerCase())) return null;
    return { status: 403, message: 'Forbidden: Origin is not allowed' };
  }
}

/** `example.com:8080` → `example.com`, `[::1]:3000` → `[::1]`; undefined for anything malformed. */
export function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  try {
    const parsed = new URL(`http://${host}`);
    if (parsed.username || parsed.password || parsed.pathname !== '/') return undefined;
    return parsed.hostname.toLowerCase();
  } catch {
    return undefined;
  }
}
