import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '@app/core';

/** What a command gets to work with. */
export interface CliContext {
  app: INestApplicationContext;
  /** The arguments after the command name. */
  args: string[];
  /**
   * ADMIN_PASSWORD from the environment, taken out before the configuration is loaded (so
   * the first-admin bootstrap does not run inside the CLI).
   */
  adminPassword: string | undefined;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * One CLI command. Add a command by writing one of these and listing it in COMMANDS
 * (commands.ts); `cli.ts` boots the application context, runs it and closes.
 */
export interface CliCommand {
  name: string;
  usage: string;
  summary: string;
  /** Adjusts the configuration before the application boots (e.g. force migrations on). */
  configure?(config: AppConfig): AppConfig;
  /** Returns the process exit code. */
  run(context: CliContext): Promise<number>;
}

/**
 * A command that runs without booting the application (no configuration, keys or migrations):
 * an auditor's tool, given only what it names.
 */
export interface StandaloneCliCommand {
  name: string;
  usage: string;
  summary: string;
  standalone: true;
  run(context: Pick<CliContext, 'args' | 'stdout' | 'stderr'> & { env: Readonly<Record<string, string | undefined>> }): Promise<number>;
}

/** Exit codes (sysexits.h), so scripts can tell a typo from a failure; 75 (EX_TEMPFAIL): the data directory is in use, retry once the server stopped. */
export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 64, DATA: 65, IN_USE: 75, CONFIG: 78 } as const;

/** `--name value` and `--name=value` options; anything else is an error. */
export function parseOptions(args: string[], allowed: readonly string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const match = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(args[i]);
    if (!match || !allowed.includes(match[1])) throw new CliUsageError(`unknown argument: ${args[i]}`);
    const value = match[2] ?? args[++i];
    if (value === undefined || value.startsWith('--')) throw new CliUsageError(`--${match[1]} needs a value`);
    options[match[1]] = value;
  }
  return options;
}

export class CliUsageError extends Error {}
