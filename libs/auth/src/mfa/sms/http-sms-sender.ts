import { Logger } from '@nestjs/common';
import { maskPhone } from '../mfa-codes';
import { SmsSender } from './sms-sender';

export const SMS_HTTP_TIMEOUT_MS = 5_000;

/**
 * Posts `{ to, text }` as JSON to a gateway (SMS_HTTP_URL) with a bearer token (SMS_HTTP_TOKEN).
 * Neither the URL (it may embed credentials), the token nor the text is ever logged.
 */
export class HttpSmsSender extends SmsSender {
  private readonly logger = new Logger('SmsSender');

  constructor(
    private readonly url: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = SMS_HTTP_TIMEOUT_MS,
  ) {
    super();
  }

  async send(to: string, text: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let status: number;
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ to, text }),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
      status = response.status;
      await response.body?.cancel();
    } catch (error) {
      // A DOMException, which is not always an `Error` instance across realms: look at the name only.
      const reason = (error as { name?: unknown } | null)?.name === 'TimeoutError' ? 'timed out' : 'failed';
      this.logger.warn(`SMS to ${maskPhone(to)} ${reason}`);
      throw new Error(`SMS gateway request ${reason}`);
    }
    if (status < 200 || status >= 300) {
      this.logger.warn(`SMS to ${maskPhone(to)} refused by the gateway (HTTP ${status})`);
      throw new Error(`SMS gateway answered HTTP ${status}`);
    }
  }
}
