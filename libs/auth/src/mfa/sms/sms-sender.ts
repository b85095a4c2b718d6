/** Delivers a text message. Pluggable: chosen by SMS_SENDER (see sms-sender.provider.ts). */
export abstract class SmsSender {
  /** Resolves once the message was handed to the carrier (or log); rejects when it was not. */
  abstract send(to: string, text: string): Promise<void>;
}
