export * from './mfa.module';
export * from './mfa.service';
export * from './mfa-error-codes';
export * from './entities/user-mfa.entity';
export * from './sms/sms-sender';
export * from './sms/log-sms-sender';
export * from './sms/http-sms-sender';
