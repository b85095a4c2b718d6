import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigValidationError, createRootLogger, loadConfig, persistGeneratedSecrets, serializeError } from '@app/core';
import { DataDirectoryInUseError } from '@app/database';
import { AppModule } from './app.module';
import { CliUsageError, ExitCode } from './cli/cli-command';
import { COMMANDS } from './cli/commands';
import { failureLine, JsonNestLogger } from './json-nest-logger';
import { version } from '../../../package.json';

/**
 * Operator commands: `npm run cli -- <command> [options]` (or `node dist/apps/server/src/cli.js`).
 * Each boots the application context (same modules and configuration as the server, no HTTP),
 * runs one command and exits. With the embedded database, stop the server first: its data
 * folder is locked while the server runs.
 */
const HELP = ['--help', '-h', 'help'];
const EXIT_CODES =
  'Exit codes: 0 ok, 1 unexpected failure, 64 usage, 65 refused (bad data, a conflict), ' +
  '75 data directory in use (stop the server first), 78 configuration\n';

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    const lines = COMMANDS.map((c) => `  ${c.usage}\n      ${c.summary}`).join('\n');
    const usage = `Usage: cli <command> [options]   (cli <command> --help)\n${lines}\n${EXIT_CODES}`;
    if (name === undefined || HELP.includes(name)) {
      process.stdout.write(usage);
      return ExitCode.OK;
    }
    process.stderr.write(`Unknown command: ${name}\n${usage}`);
    return ExitCode.USAGE;
  }
  if (args.some((arg) => HELP.includes(arg))) {
    process.stdout.write(`Usage: cli ${command.usage}\n  ${command.summary}\n${EXIT_CODES}`);
    return ExitCode.OK;
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
  const rootLogger = createRootLogger(config);
  let app;
  try {
    app = await NestFactory.createApplicationContext(AppModule.forRoot(config, rootLogger), {
      // JSON like the server's log, warnings and errors only (LOG_LEVEL=warn unless set).
      logger: new JsonNestLogger(rootLogger),
      abortOnError: false,
    });
  } catch (error) {
    if (!(error instanceof DataDirectoryInUseError)) throw error;
    process.stderr.write(
      failureLine(
        `${command.name}: ${error.message}`,
        { code: 'DATA_DIR_IN_USE', holder: error.holder, exitCode: ExitCode.IN_USE },
        version,
      ),
    );
    return ExitCode.IN_USE;
  }
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
    process.stderr.write(failureLine('Failed', { err: serializeError(error), exitCode: ExitCode.FAILURE }, version));
    process.exit(ExitCode.FAILURE);
  },
);
