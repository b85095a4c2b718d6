import { AppException } from '@app/core';

/** Codes of the identity-provider refusals (the `error` field of the Error body). */
export const IdentityErrorCode = {
  /** No such provider, or it is not set up for sign-in (no client id). */
  UNKNOWN_PROVIDER: 'IDP_UNKNOWN_PROVIDER',
  /** The IdP could not be reached or its discovery document is invalid. */
  PROVIDER_UNAVAILABLE: 'IDP_UNAVAILABLE',
  /** The authorization response failed (state, PKCE, ID token, the user cancelled, or the sign-in took too long). */
  SIGN_IN_FAILED: 'IDP_SIGN_IN_FAILED',
  /** An account with the email exists, and the IdP's assertion is not enough to link it (unverified email or untrusted domain). */
  LINK_REFUSED: 'IDP_LINK_REFUSED',
  /** The account already has another identity of this IdP. */
  ALREADY_LINKED: 'IDP_ALREADY_LINKED',
  /** The email's domain may not sign in through this IdP, or the IdP asserts no (verified) email for a new account. */
  EMAIL_NOT_ACCEPTED: 'IDP_EMAIL_NOT_ACCEPTED',
  /** No account, and just-in-time creation is off for this IdP. */
  NO_ACCOUNT: 'IDP_NO_ACCOUNT',
  /** The account is suspended or deleted. */
  ACCOUNT_INACTIVE: 'IDP_ACCOUNT_INACTIVE',
} as const;

/** A refusal of an IdP identity: the error to answer with, and the reason written to the audit record. */
export class IdentityRefusal extends AppException {
  constructor(
    readonly reason: string,
    code: string,
    message: string,
    status: number,
  ) {
    super(code, message, status);
  }
}

export function unknownProvider(): AppException {
  return new AppException(IdentityErrorCode.UNKNOWN_PROVIDER, 'No such identity provider is configured for sign-in', 404);
}

export function providerUnavailable(): AppException {
  return new AppException(IdentityErrorCode.PROVIDER_UNAVAILABLE, 'The identity provider cannot be reached; try again later', 503);
}

export function signInFailed(message: string): AppException {
  return new AppException(IdentityErrorCode.SIGN_IN_FAILED, message, 401);
}

/** A refused IdP callback of a sign-in started on the OAuth sign-in page: answered with the sign-in pages' error page. */
export class InteractionSignInFailure extends Error {
  constructor(readonly refusal: AppException) {
    super(refusal.message);
  }
}
