import { AppException, ErrorCode, Principal } from '@app/core';

const REALM = 'Bearer realm="secure-mcp-server"';

/** The one 401 for every failed login: unknown email, wrong password, wrong code, locked, suspended. */
export function invalidCredentials(): AppException {
  return new AppException(ErrorCode.UNAUTHORIZED, 'Invalid email or password', 401, [], { 'WWW-Authenticate': REALM });
}

/** No credentials on a route that needs them. */
export function authenticationRequired(): AppException {
  return new AppException(ErrorCode.UNAUTHORIZED, 'Authentication required', 401, [], { 'WWW-Authenticate': REALM });
}

/**
 * A token that does not (or no longer) grant access: forged, expired, of the wrong type, or
 * of an ended session or inactive user. Deliberately one message for all of them.
 */
export function invalidToken(): AppException {
  return new AppException(ErrorCode.UNAUTHORIZED, 'Invalid or expired token', 401, [], {
    'WWW-Authenticate': `${REALM}, error="invalid_token"`,
  });
}

/** A bearer token or API key in the query string: refused, whatever else the request carries. */
export function credentialsInUrl(): AppException {
  return new AppException(ErrorCode.UNAUTHORIZED, 'Credentials are not accepted in the URL; send Authorization: Bearer <token>', 401, [], {
    'WWW-Authenticate': `${REALM}, error="invalid_request"`,
  });
}

/** Password checked out; the account needs its second factor. */
export function mfaRequired(): AppException {
  return new AppException(ErrorCode.MFA_REQUIRED, 'Multi-factor authentication code required', 401, [], {
    'WWW-Authenticate': REALM,
  });
}

/** Codes of the account routes beyond the core ones (the `error` field of the Error body). */
export const AuthErrorCode = {
  /** The password change's currentPassword is not the account's password. */
  INVALID_CURRENT_PASSWORD: 'INVALID_CURRENT_PASSWORD',
  /** Too many wrong passwords (at login or password change): try again after Retry-After seconds. */
  ACCOUNT_LOCKED: 'ACCOUNT_LOCKED',
} as const;

/**
 * Credentials (password, MFA, API keys, interactive sessions) are managed only with a user login:
 * an API key is a narrow credential and must not be able to widen or take over the account.
 */
export function assertInteractiveLogin(principal: Principal): void {
  if (principal.via !== 'jwt') {
    throw AppException.forbidden('Credentials are managed with a user login, not with an API key');
  }
}
