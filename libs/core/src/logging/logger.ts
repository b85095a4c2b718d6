import pino, { Logger } from 'pino';
import type { AppConfig } from '../config/app-config';

/**
 * Paths never written to a log: credentials in headers and any secret-looking field in a
 * logged object, at any of the depths we log objects.
 */
const SECRET_KEYS = [
  'password',
  'newPassword',
  'currentPassword',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'secret',
  'code',
  'mfaCode',
  'backupCodes',
  'ticket',
  'authorization',
  'cookie',
];
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
];

export function createRootLogger(config: AppConfig): Logger {
  return pino({
    level: config.log.level,
    base: { service: 'secure-mcp-server', version: config.version },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    messageKey: 'msg',
    transport: config.log.pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  });
}
