import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/core';

export interface OriginRefusal {
  status: 403;
  message: string;
}

/**
 * DNS-rebinding and cross-site protection for the MCP endpoints (HTTP and WebSocket upgrades):
 * the Host header must name an allowed host (by hostname, any port), and an Origin header, when a
 * browser sends one, must be a whole origin — scheme, host and port — that is either the
 * endpoint's own (the Host header's host and port, over http or https) or a configured one. A
 * hostname match alone is not enough: any other local web server (`http://localhost:1`) would pass.
 */
@Injectable()
export class OriginPolicy {
  private readonly hosts: ReadonlySet<string>;
  private readonly origins: ReadonlySet<string>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.hosts = new Set(config.mcp.allowedHosts);
    this.origins = new Set(config.mcp.allowedOrigins);
  }

  /** Null when allowed, else why not. */
  check(host: string | undefined, origin: string | undefined): OriginRefusal | null {
    const authority = authorityOf(host);
    if (!authority || !this.hosts.has(authority.hostname)) return { status: 403, message: 'Forbidden: Host header is not allowed' };
    if (origin === undefined || origin === '') return null;
    const refused: OriginRefusal = { status: 403, message: 'Forbidden: Origin is not allowed' };
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return refused;
    }
    // The serialised form is the whole origin; a path, credentials or an opaque origin are not one.
    if (parsed.origin === 'null' || parsed.origin !== origin.toLowerCase()) return refused;
    if (this.origins.has(parsed.origin)) return null;
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return refused;
    // The Host header leaves out the default port of the scheme in use, as the Origin does.
    const defaultPort = parsed.protocol === 'https:' ? '443' : '80';
    const sameOrigin = parsed.hostname === authority.hostname && (parsed.port || defaultPort) === (authority.port || defaultPort);
    return sameOrigin ? null : refused;
  }
}

/** `example.com:8080` → `example.com`, `[::1]:3000` → `[::1]`; undefined for anything malformed. */
export function hostnameOf(host: string | undefined): string | undefined {
  return authorityOf(host)?.hostname;
}

/** Host headers parsed lately: a client sends the same one on every request, and URL parsing is ~1% of an MCP call's CPU. */
const AUTHORITIES = new Map<string, { hostname: string; port: string } | undefined>();
/** Bounds the cache (Host is the client's to choose): it starts over when full. */
const MAX_AUTHORITIES = 256;

/** The Host header's hostname (normalised as a URL's) and port exactly as given ('' when none). */
function authorityOf(host: string | undefined): { hostname: string; port: string } | undefined {
  if (!host) return undefined;
  if (AUTHORITIES.has(host)) return AUTHORITIES.get(host);
  const authority = parseAuthority(host);
  if (AUTHORITIES.size >= MAX_AUTHORITIES) AUTHORITIES.clear();
  AUTHORITIES.set(host, authority);
  return authority;
}

function parseAuthority(host: string): { hostname: string; port: string } | undefined {
  try {
    const parsed = new URL(`http://${host}`);
    if (parsed.username || parsed.password || parsed.pathname !== '/' || parsed.search || parsed.hash) return undefined;
    return Object.freeze({ hostname: parsed.hostname.toLowerCase(), port: /:(\d+)$/.exec(host)?.[1] ?? '' });
  } catch {
    return undefined;
  }
}
