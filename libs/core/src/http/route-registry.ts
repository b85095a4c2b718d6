import FindMyWay from 'find-my-way';
import type { FastifyInstance } from 'fastify';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * Remembers every registered route so a miss can tell "no such path" (404) from
 * "path exists, other method" (405 with Allow). Fastify answers both with 404.
 */
export class RouteRegistry {
  private readonly router = FindMyWay({ ignoreTrailingSlash: true });

  attach(fastify: FastifyInstance): void {
    fastify.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (!METHODS.includes(method as (typeof METHODS)[number])) continue;
        try {
          this.router.on(method as (typeof METHODS)[number], route.url, () => undefined);
        } catch {
          // Duplicate registrations (e.g. HEAD added for GET) are fine.
        }
      }
    });
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
