import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { DeclaresAccess, ErrorResponseDto, IS_PUBLIC_KEY } from '@app/core';

/**
 * For POST /auth/refresh: the bearer credential is a refresh token, which the route verifies
 * itself, so the access-token guard steps aside. Unlike `@Public()` the OpenAPI operation keeps
 * its BearerAuth security entry, as the contract says.
 */
export const RefreshTokenAuth = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(IS_PUBLIC_KEY, true),
    DeclaresAccess(),
    ApiBearerAuth('BearerAuth'),
    ApiUnauthorizedResponse({ description: 'Missing, invalid, expired or reused refresh token', type: ErrorResponseDto }),
  );
