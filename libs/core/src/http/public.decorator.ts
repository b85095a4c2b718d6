import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { ACCESS_DECLARED_KEY } from '../auth/access.decorators';

export const IS_PUBLIC_KEY = 'isPublic';

/**
 * The only way out of the global deny-by-default guard: the route needs no credentials.
 * It also marks the OpenAPI operation so the document says `security: []` for it.
 */
export const Public = (): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(IS_PUBLIC_KEY, true), SetMetadata(ACCESS_DECLARED_KEY, true), ApiExtension('x-public', true));
