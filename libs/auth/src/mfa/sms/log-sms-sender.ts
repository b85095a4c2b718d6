import { Logger } from '@nestjs/common';
import { maskPhone } from '../mfa-codes';
import { SmsSender } from './sms-sender';

/**
 * Development sender: nothing leaves the process. The text (which carries the code) is written
 * to the log only when the developer asked for it (SMS_LOG_CODES=true); otherwise the line says
 * a code was sent, and nothing more. The last message per number is kept in memory so tests and
 * local tools can read it. Production refuses this sender (and SMS_LOG_CODES) at config time.
 */
export class LogSmsSender extends SmsSender {
  private readonly logger = new Logger('SmsSender');
  private readonly lastByPhone = new Map<string, string>();

  constructor(private readonly logCodes: boolean) {
    super();
  }

  async send(to: string, text: string): Promise<void> {
    this.lastByPhone.set(to, text);
    if (this.logCodes) this.logger.log(`SMS to ${maskPhone(to)}: ${text}`);
    else this.logger.log(`SMS to ${maskPhone(to)}: code sent`);
  }

  /** The last text sent to `to` in this process, if any. */
  lastMessageTo(to: string): string | undefined {
    return this.lastByPhone.get(to);
  }
}
