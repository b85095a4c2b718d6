export * from './mfa.module';
export * from './mfa.service';
export * from './mfa-error-codes';
export { MFA_TYPES } from './user-mfa.repository';
export type { MfaType } from './user-mfa.repository';
export * from './sms/sms-sender';
export * from './sms/log-sms-sender';
export * from './sms/http-sms-sender';
