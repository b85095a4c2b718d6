import { AuditService } from '@app/audit';
import { AppException } from '@app/core';
import { CliCommand, ExitCode, parseOptions } from './cli-command';

/**
 * `audit:checkpoint`: verifies the chain and prints a signed checkpoint of its head (JSON) on
 * standard output, for keeping outside the database (e.g. `> checkpoints/$(date +%F).json`).
 */
export const auditCheckpointCommand: CliCommand = {
  name: 'audit:checkpoint',
  usage: 'audit:checkpoint   (JSON on stdout)',
  summary: 'Export a signed checkpoint of the audit chain head',
  async run({ app, args, stdout, stderr }) {
    parseOptions(args, []);
    try {
      const checkpoint = await app.get(AuditService, { strict: false }).checkpoint();
      stdout.write(`${JSON.stringify(checkpoint, null, 2)}\n`);
      return ExitCode.OK;
    } catch (error) {
      if (error instanceof AppException && error.getStatus() === 409) {
        stderr.write(`audit:checkpoint: ${error.message}\n`);
        return ExitCode.DATA;
      }
      throw error;
    }
  },
};

/** `audit:public-key`: prints the public key (PEM) that checks checkpoints, for the auditor. */
export const auditPublicKeyCommand: CliCommand = {
  name: 'audit:public-key',
  usage: 'audit:public-key   (PEM on stdout)',
  summary: 'Print the public key that verifies audit checkpoints',
  async run({ app, args, stdout }) {
    parseOptions(args, []);
    stdout.write(app.get(AuditService, { strict: false }).checkpointPublicKey);
    return ExitCode.OK;
  },
};
