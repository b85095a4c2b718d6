import { AdminProvisioningService } from '@app/admin';
import { AppException } from '@app/core';
import { CliCommand, CliUsageError, ExitCode, parseOptions } from './cli-command';
import { readSecret } from './read-secret';

/**
 * `create-admin --email <email> --name <name>`: creates an active administrator. The password
 * comes from ADMIN_PASSWORD or standard input, never from the command line.
 */
export const createAdminCommand: CliCommand = {
  name: 'create-admin',
  usage: 'create-admin --email <email> --name <name>   (password: ADMIN_PASSWORD or stdin)',
  summary: 'Create an administrator account',
  async run({ app, args, adminPassword, stdin, stdout, stderr }) {
    const options = parseOptions(args, ['email', 'name']);
    if (!options.email || !options.name) throw new CliUsageError('--email and --name are required');
    const password = adminPassword ?? (await readSecret('Password: ', stdin, stderr));
    if (!password) throw new CliUsageError('no password given (set ADMIN_PASSWORD or pipe it on stdin)');
    try {
      const user = await app
        .get(AdminProvisioningService, { strict: false })
        .createAdmin({ email: options.email, name: options.name, password }, 'cli');
      stdout.write(`Created administrator ${user.email} (${user.id})\n`);
      return ExitCode.OK;
    } catch (error) {
      if (error instanceof AppException && error.getStatus() < 500) {
        const details = error.details.map((d) => `\n  - ${d.field ? `${d.field}: ` : ''}${d.message}`).join('');
        stderr.write(`create-admin: ${error.message}${details}\n`);
        return ExitCode.DATA;
      }
      throw error;
    }
  },
};
