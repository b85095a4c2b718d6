import { Provider } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/core';
import { HttpSmsSender } from './http-sms-sender';
import { LogSmsSender } from './log-sms-sender';
import { SmsSender } from './sms-sender';

/** SMS_SENDER=http → HttpSmsSender; otherwise the development LogSmsSender (config refuses it in production). */
export const smsSenderProvider: Provider = {
  provide: SmsSender,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig): SmsSender =>
    config.mfa.smsSender === 'http' && config.mfa.smsHttpUrl
      ? new HttpSmsSender(config.mfa.smsHttpUrl, config.secrets.smsHttpToken)
      : new LogSmsSender(config.mfa.smsLogCodes),
};
