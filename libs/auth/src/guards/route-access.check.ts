import { Injectable, OnModuleInit, Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { ACCESS_DECLARED_KEY } from '@app/core';

/**
 * Every route states what it requires (`@Public()`, `@Authenticated()`, `@InteractiveOnly()`,
 * `@RequirePermissions(...)`, `@Roles(...)` or `@RefreshTokenAuth()`): a controller handler
 * without one stops the application at boot, naming the handler, instead of running open to
 * any signed-in caller.
 */
@Injectable()
export class RouteAccessCheck implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    const controllers = this.discovery
      .getControllers()
      .map((wrapper) => wrapper.metatype)
      .filter((metatype): metatype is Type => typeof metatype === 'function');
    const undeclared = undeclaredRoutes(controllers, this.reflector);
    if (undeclared.length > 0) {
      throw new Error(
        `Routes without an access declaration (add @Public, @Authenticated, @InteractiveOnly or @RequirePermissions): ${undeclared.join(', ')}`,
      );
    }
  }
}

/** `Controller.method` of every route handler of these controllers that declares no access rule. */
export function undeclaredRoutes(controllers: readonly Type[], reflector: Reflector): string[] {
  const found: string[] = [];
  for (const controller of controllers) {
    const seen = new Set<string>();
    // Walk the prototype chain too: a handler may be inherited (MetricsController).
    for (let proto = controller.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        if (name === 'constructor' || seen.has(name)) continue;
        seen.add(name);
        const handler = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
        if (typeof handler !== 'function') continue;
        if (Reflect.getMetadata(METHOD_METADATA, handler) === undefined || Reflect.getMetadata(PATH_METADATA, handler) === undefined)
          continue;
        if (reflector.getAllAndOverride<boolean>(ACCESS_DECLARED_KEY, [handler, controller]) !== true)
          found.push(`${controller.name}.${name}`);
      }
    }
  }
  return found;
}
