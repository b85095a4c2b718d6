import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { loadConfig } from '@app/core';
import { HttpSmsSender } from './http-sms-sender';
import { LogSmsSender } from './log-sms-sender';
import { SmsSender } from './sms-sender';
import { smsSenderProvider } from './sms-sender.provider';

describe('SMS senders', () => {
  let logged: string[];
  beforeEach(() => {
    logged = [];
    for (const level of ['log', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => void logged.push(String(args[0])));
    }
  });
  afterEach(() => jest.restoreAllMocks());

  describe('LogSmsSender', () => {
    it('keeps the last message per number and, outside development, logs neither code nor full number', async () => {
      const sender = new LogSmsSender(false);
      await sender.send('+14155550123', '111111 is your code');
      await sender.send('+14155550123', '222222 is your code');
      await sender.send('+442071838750', '333333 is your code');
      expect(sender.lastMessageTo('+14155550123')).toBe('222222 is your code');
      expect(sender.lastMessageTo('+442071838750')).toBe('333333 is your code');
      expect(sender.lastMessageTo('+10000000000')).toBeUndefined();
      expect(logged.join('\n')).not.toMatch(/111111|222222|333333|4155550123|2071838750/);
      expect(logged[0]).toContain('+1********23');
    });

    it('when asked to (SMS_LOG_CODES) writes the text to the log, with the number masked', async () => {
      await new LogSmsSender(true).send('+14155550123', '444444 is your code');
      expect(logged.join('\n')).toContain('444444 is your code');
      expect(logged.join('\n')).not.toContain('4155550123');
    });
  });

  describe('HttpSmsSender', () => {
    let server: Server;
    let url: string;
    let received: Array<{ method?: string; auth?: string; type?: string; body: string }>;
    let status: number;
    let delayMs: number;

    beforeAll(async () => {
      server = createServer((req: IncomingMessage, res) => {
        let body = '';
        req.on('data', (chunk) => (body += chunk));
        req.on('end', () => {
          received.push({ method: req.method, auth: req.headers.authorization, type: req.headers['content-type'], body });
          setTimeout(() => res.writeHead(status).end(), delayMs);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
    beforeEach(() => {
      received = [];
      status = 202;
      delayMs = 0;
    });

    it('posts {to, text} as JSON with the bearer token', async () => {
      await new HttpSmsSender(url, 'gateway-token-123').send('+14155550123', '555555 is your code');
      expect(received).toEqual([
        {
          method: 'POST',
          auth: 'Bearer gateway-token-123',
          type: 'application/json',
          body: JSON.stringify({ to: '+14155550123', text: '555555 is your code' }),
        },
      ]);
    });

    it('rejects on a non-2xx answer without logging token, code or number', async () => {
      status = 500;
      await expect(new HttpSmsSender(url, 'gateway-token-123').send('+14155550123', '666666 is your code')).rejects.toThrow(/HTTP 500/);
      expect(logged.join('\n')).not.toMatch(/gateway-token-123|666666|4155550123/);
    });

    it('gives up after its timeout', async () => {
      delayMs = 500;
      await expect(new HttpSmsSender(url, undefined, 50).send('+14155550123', '777777 is your code')).rejects.toThrow(/timed out/);
    });
  });

  describe('provider', () => {
    const build = (env: Record<string, string>) =>
      (smsSenderProvider as { useFactory: (config: ReturnType<typeof loadConfig>) => SmsSender }).useFactory(loadConfig(env));

    it('never logs codes by default, in development too; SMS_LOG_CODES=true is the one way to see them', async () => {
      await (build({ NODE_ENV: 'development' }) as LogSmsSender).send('+14155550123', '888888 is your code');
      await (build({}) as LogSmsSender).send('+14155550123', '898989 is your code');
      expect(logged).toEqual(['SMS to +1********23: code sent', 'SMS to +1********23: code sent']);
      await (build({ NODE_ENV: 'development', SMS_LOG_CODES: 'true' }) as LogSmsSender).send('+14155550123', '999999 is your code');
      expect(logged[2]).toBe('SMS to +1********23: 999999 is your code');
    });

    it('refuses SMS_LOG_CODES in production', () => {
      expect(() =>
        loadConfig({
          NODE_ENV: 'production',
          JWT_SECRET: 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA',
          ENCRYPTION_KEY: 'Zr8Nq2Lw6Yt4Kp0Hx9Vb3Mc7Jd1Gs5Fa',
          SMS_SENDER: 'http',
          SMS_HTTP_URL: 'https://sms.example.com/send',
          SMS_LOG_CODES: 'true',
        }),
      ).toThrow(/SMS_LOG_CODES/);
    });

    it('uses the log sender by default and the HTTP sender when configured', () => {
      expect(build({ NODE_ENV: 'test' })).toBeInstanceOf(LogSmsSender);
      expect(build({ NODE_ENV: 'test', SMS_SENDER: 'http', SMS_HTTP_URL: 'https://sms.example.com/send' })).toBeInstanceOf(HttpSmsSender);
    });

    it('cannot run production with the log sender (config refuses it)', () => {
      expect(() =>
        loadConfig({
          NODE_ENV: 'production',
          JWT_SECRET: 'kP3w9ZqL7vT2mX8nB4cR6yH1jF5dG0sA',
          ENCRYPTION_KEY: 'Zr8Nq2Lw6Yt4Kp0Hx9Vb3Mc7Jd1Gs5Fa',
        }),
      ).toThrow(/SMS_SENDER/);
    });
  });
});
