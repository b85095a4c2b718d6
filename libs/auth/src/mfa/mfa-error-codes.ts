/** Error codes of the MFA routes (the `error` field of the contract's Error body). */
export const MfaErrorCode = {
  /** The code was wrong, expired, already used or out of tries. */
  MFA_INVALID_CODE: 'MFA_INVALID_CODE',
  /** A factor is active: replacing it needs `currentCode`. */
  MFA_ALREADY_ENABLED: 'MFA_ALREADY_ENABLED',
  /** Nothing of the given type is pending or active to verify against. */
  MFA_NOT_PENDING: 'MFA_NOT_PENDING',
  /** An administrator reset was asked for an account without a factor or enrollment. */
  MFA_NOT_ENABLED: 'MFA_NOT_ENABLED',
  /** Too many wrong codes against the active factor; try again after Retry-After seconds. */
  MFA_LOCKED: 'MFA_LOCKED',
  /** The SMS gateway did not take the message. */
  SMS_DELIVERY_FAILED: 'SMS_DELIVERY_FAILED',
} as const;
