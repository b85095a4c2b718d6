import type { LoggerService } from '@nestjs/common';
import type { Logger } from 'pino';

/**
 * Nest's own messages through the root pino logger, as JSON, from the first moment: with
 * bufferLogs, what Nest logged before `useLogger` — a failed boot included — would otherwise be
 * flushed to Nest's colourised console logger. Nest's "ExceptionHandler" report of a failed boot
 * is left out: main.ts and cli.ts report that failure once themselves.
 */
export class JsonNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', message, rest);
  }

  private write(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', message: unknown, rest: unknown[]): void {
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    if (context === 'ExceptionHandler') return;
    if (message instanceof Error) this.logger[level]({ context, err: message }, message.message);
    else this.logger[level]({ context }, typeof message === 'string' ? message : JSON.stringify(message));
  }
}

/** One JSON line on stderr for a failure before (or without) a logger: what pino would write. */
export function failureLine(message: string, fields: Record<string, unknown> = {}, version = '0.0.0'): string {
  return `${JSON.stringify({ level: 60, time: new Date().toISOString(), service: 'secure-mcp-server', version, msg: message, ...fields })}\n`;
}
