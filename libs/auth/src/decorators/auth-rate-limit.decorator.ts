import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '@app/core';

export const AUTH_RATE_LIMIT_KEY = 'authRateLimit';

const integer = { schema: { type: 'integer' as const } };

/**
 * The stricter per-client-IP burst limit of the unauthenticated auth routes (AUTH_RATE_LIMIT
 * per AUTH_RATE_WINDOW), shared by all of them so attempts cannot be spread across routes.
 */
export const AuthRateLimit = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(AUTH_RATE_LIMIT_KEY, true),
    ApiTooManyRequestsResponse({
      description: 'Rate limit exceeded',
      type: ErrorResponseDto,
      headers: {
        'X-RateLimit-Limit': integer,
        'X-RateLimit-Remaining': integer,
        'X-RateLimit-Reset': integer,
        'Retry-After': integer,
      },
    }),
  );
