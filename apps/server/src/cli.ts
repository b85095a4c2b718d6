import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigValidationError, createRootLogger, loadConfig, persistGeneratedSecrets } from '@app/core';
import { AppModule } from './app.module';
import { CliUsageError, ExitCode } from './cli/cli-command';
import { COMMANDS } from './cli/commands';
import { version } from '../../../package.json';

/**
 * Operator commands: `npm run cli -- <command> [options]` (or `node dist/apps/server/src/cli.js`).
 * Each boots the application context (same modules and configuration as the server, no HTTP),
 * runs one command and exits. With the embedded database, stop the server first: its data
 * folder is locked while the server runs.
 */
async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    const lines = COMMANDS.map((c) => `  ${c.usage}\n      ${c.summary}`).join('\n');
    process.stderr.write(`${name ? `Unknown command: ${name}\n` : ''}Usage: cli <command> [options]\n${lines}\n`);
    return name && name !== 'help' ? ExitCode.USAGE : ExitCode.OK;
  }

  if ('standalone' in command) {
    try {
      return await command.run({ args, env: process.env, stdout: process.stdout, stderr: process.stderr });
    } catch (error) {
      if (!(error instanceof CliUsageError)) throw error;
      process.stderr.write(`${command.name}: ${error.message}\nUsage: cli ${command.usage}\n`);
      return ExitCode.USAGE;
    }
  }

  // The first-admin bootstrap must not fire inside a CLI run; ADMIN_PASSWORD is create-admin's input.
  const { ADMIN_EMAIL: _email, ADMIN_PASSWORD: adminPassword, ...env } = process.env;
  let config;
  try {
    config = loadConfig({ LOG_LEVEL: 'warn', ...env }, version);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${error.message}\n`);
      return ExitCode.CONFIG;
    }
    throw error;
  }
  // The same generated secrets as the server on this data directory (see persistGeneratedSecrets).
  config = persistGeneratedSecrets(config).config;
  config = command.configure?.(config) ?? config;
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(config, createRootLogger(config)), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  try {
    return await command.run({
      app,
      args,
      adminPassword,
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
  } catch (error) {
    if (error instanceof CliUsageError) {
      process.stderr.write(`${command.name}: ${error.message}\nUsage: cli ${command.usage}\n`);
      return ExitCode.USAGE;
    }
    throw error;
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`Failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(ExitCode.FAILURE);
  },
);
