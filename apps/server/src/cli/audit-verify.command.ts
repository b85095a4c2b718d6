import { AuditService } from '@app/audit';
import { CliCommand, ExitCode, parseOptions } from './cli-command';

/**
 * `audit:verify`: walks the audit hash chain and reports the first tampered record. Exits 0
 * when the chain is intact and 65 (DATA) when it is not, so a cron job or CI step can alert.
 */
export const auditVerifyCommand: CliCommand = {
  name: 'audit:verify',
  usage: 'audit:verify',
  summary: 'Verify the audit log hash chain and report the first tampered record',
  async run({ app, args, stdout }) {
    parseOptions(args, []);
    const result = await app.get(AuditService, { strict: false }).verifyChain();
    if (result.valid) {
      stdout.write(`Audit chain intact: ${result.checked} records checked\n`);
      return ExitCode.OK;
    }
    const { id, seq, reason } = result.firstInvalid!;
    stdout.write(`Audit chain BROKEN at record ${id} (seq ${seq}): ${reason}; ${result.checked} records checked\n`);
    return ExitCode.DATA;
  },
};
