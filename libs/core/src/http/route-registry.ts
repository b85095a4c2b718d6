import FindMyWay from 'find-my-way';
import type { FastifyInstance } from 'fastify';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export interface RegisteredRoute {
  method: string;
  url: string;
}

const REGISTRIES = new WeakMap<FastifyInstance, RouteRegistry>();

/**
 * Remembers every registered route so a miss can tell "no such path" (404) from
 * "path exists, other method" (405 with Allow). Fastify answers both with 404. The list of
 * routes also drives the authorization matrix test: a new route must get an entry there.
 */
export class RouteRegistry {
  private readonly router = FindMyWay({ ignoreTrailingSlash: true });
  private readonly registered = new Map<string, RegisteredRoute>();

  /** The registry attached to this Fastify instance, if any. */
  static of(fastify: FastifyInstance): RouteRegistry | undefined {
    return REGISTRIES.get(fastify);
  }

  attach(fastify: FastifyInstance): void {
    REGISTRIES.set(fastify, this);
    fastify.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (!METHODS.includes(method as (typeof METHODS)[number])) continue;
        this.registered.set(`${method} ${route.url}`, { method, url: route.url });
        try {
          this.router.on(method as (typeof METHODS)[number], route.url, () => undefined);
        } catch {
          // Duplicate registrations (e.g. HEAD added for GET) are fine.
        }
      }
    });
  }

  /** Every route registered so far (all layers: controllers, MCP, documentation), sorted. */
  routes(): RegisteredRoute[] {
    return [...this.registered.values()].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  }

  /**
   * Methods that would match this concrete path, empty when the path is unknown. OPTIONS
   * alone does not make a path known: CORS answers preflights for every path.
   */
  allowedMethods(path: string): string[] {
    const pathname = path.split('?')[0];
    const allowed: string[] = METHODS.filter((method) => this.router.find(method, pathname) !== null);
    return allowed.some((method) => method !== 'OPTIONS') ? allowed : [];
  }
}
