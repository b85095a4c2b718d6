import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../errors/error-response.dto';
import type { Role } from './principal';

export const REQUIRED_ROLES_KEY = 'requiredRoles';
export const REQUIRED_PERMISSIONS_KEY = 'requiredPermissions';

/**
 * Routes are authenticated by default (the global guard); these add requirements on top and
 * document them in the OpenAPI document at the same time.
 */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(REQUIRED_ROLES_KEY, roles),
    ApiBearerAuth('BearerAuth'),
    ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto }),
    ApiForbiddenResponse({ description: 'Insufficient permissions', type: ErrorResponseDto }),
  );

/** The caller must hold every listed permission. */
export const RequirePermissions = (...permissions: string[]): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(REQUIRED_PERMISSIONS_KEY, permissions),
    ApiBearerAuth('BearerAuth'),
    ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto }),
    ApiForbiddenResponse({ description: 'Insufficient permissions', type: ErrorResponseDto }),
  );
