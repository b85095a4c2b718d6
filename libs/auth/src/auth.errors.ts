import { AppException, ErrorCode } from '@app/core';

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

/** A password login or registration for a domain whose accounts must sign in through an identity provider. */
export function idpSignInRequired(provider: string, displayName: string): AppException {
  return AppException.forbidden(
    `Accounts of this email domain sign in through ${displayName}: GET /api/v1/auth/oidc/${provider}`,
    AuthErrorCode.IDP_SIGN_IN_REQUIRED,
  );
}

/** Stable code of the refusal below, for clients that tell it from a missing permission. */
export const INTERACTIVE_LOGIN_REQUIRED = 'INTERACTIVE_LOGIN_REQUIRED';

/** An API key on a route that manages credentials or sessions: only a user login may. */
export function interactiveLoginRequired(): AppException {
  return AppException.forbidden(
    'This route needs a user login: API keys cannot manage MFA, API keys, passwords or sessions',
    INTERACTIVE_LOGIN_REQUIRED,
  );
}

/** Codes of the account routes beyond the core ones (the `error` field of the Error body). */
export const AuthErrorCode = {
  /** The password change's currentPassword is not the account's password. */
  INVALID_CURRENT_PASSWORD: 'INVALID_CURRENT_PASSWORD',
  /** Too many wrong passwords (at login or password change): try again after Retry-After seconds. */
  ACCOUNT_LOCKED: 'ACCOUNT_LOCKED',
  /** The email's domain signs in through an enterprise identity provider: no password login or registration. */
  IDP_SIGN_IN_REQUIRED: 'IDP_SIGN_IN_REQUIRED',
} as const;
