import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from '../errors/error-response.dto';
import type { Role } from './principal';

export const REQUIRED_ROLES_KEY = 'requiredRoles';
export const REQUIRED_PERMISSIONS_KEY = 'requiredPermissions';
export const INTERACTIVE_ONLY_KEY = 'interactiveOnly';
/**
 * Set by every access decorator (and `@Public()`): a route without it fails the boot check
 * (RouteAccessCheck) and, should one slip through, is refused by the guard.
 */
export const ACCESS_DECLARED_KEY = 'accessDeclared';

/** Marks the route as having stated its access rule; for decorators outside this file. */
export const DeclaresAccess = (): MethodDecorator & ClassDecorator => SetMetadata(ACCESS_DECLARED_KEY, true);

const bearer = (forbidden: string) => [
  DeclaresAccess(),
  ApiBearerAuth('BearerAuth'),
  ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto }),
  ApiForbiddenResponse({ description: forbidden, type: ErrorResponseDto }),
];

/**
 * Routes are authenticated by default (the global guard), but each must still say what it
 * requires; these decorators add the requirement and document it in the OpenAPI document.
 */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(REQUIRED_ROLES_KEY, roles), ...bearer('Insufficient permissions'));

/** The caller must hold every listed permission (its effective ones: an API key's are narrowed). */
export const RequirePermissions = (...permissions: string[]): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(REQUIRED_PERMISSIONS_KEY, permissions), ...bearer('Insufficient permissions'));

/** Any authenticated principal, a user login or an API key, with no permission needed. */
export const Authenticated = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    DeclaresAccess(),
    ApiBearerAuth('BearerAuth'),
    ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto }),
  );

/**
 * Only a user's interactive login (an access token), never an agent API key: for routes that
 * manage credentials or sessions (MFA, API keys, logout, session termination, password). A key
 * that leaks must not be able to take over the account it belongs to.
 */
export const InteractiveOnly = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(INTERACTIVE_ONLY_KEY, true),
    ApiExtension('x-interactive-login-only', true),
    ...bearer('Insufficient permissions, or an API key (this route needs a user login)'),
  );
