import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { auditRowsAfter, checkCheckpoint, parseCheckpoint } from '@app/audit';
import { CliUsageError, ExitCode, parseOptions, StandaloneCliCommand } from './cli-command';

/**
 * `audit:verify-checkpoint --checkpoint <file> --public-key <file>`: the auditor's check, run
 * without the server's configuration or keys: the checkpoint's signature against the public key,
 * then the chain up to it in the PostgreSQL database named by DATABASE_URL (read only; for a
 * dump, restore it anywhere and point DATABASE_URL there). Exit 0 when it holds, 65 when not.
 */
export const auditVerifyCheckpointCommand: StandaloneCliCommand = {
  name: 'audit:verify-checkpoint',
  usage: 'audit:verify-checkpoint --checkpoint <file> --public-key <file>   (database: DATABASE_URL)',
  summary: 'Check an exported audit checkpoint offline, with the public key only',
  standalone: true,
  async run({ args, env, stdout }) {
    const options = parseOptions(args, ['checkpoint', 'public-key']);
    if (!options.checkpoint || !options['public-key']) throw new CliUsageError('--checkpoint and --public-key are required');
    const databaseUrl = env.DATABASE_URL;
    if (!databaseUrl) throw new CliUsageError('set DATABASE_URL to the database (or restored dump) to check');
    let checkpoint;
    try {
      checkpoint = parseCheckpoint(readFileSync(options.checkpoint, 'utf8'));
    } catch (error) {
      throw new CliUsageError(`${options.checkpoint}: ${(error as Error).message}`);
    }
    const publicKey = readFileSync(options['public-key'], 'utf8');
    const client = new Client({ connectionString: databaseUrl, application_name: 'smcp-audit-verify-checkpoint' });
    await client.connect();
    try {
      await client.query('BEGIN READ ONLY');
      // The audit repository's SQL, on this bare client.
      const read = (afterSeq: string, limit: number) =>
        auditRowsAfter(async (sql, params) => (await client.query(sql, params)).rows, afterSeq, limit);
      const result = await checkCheckpoint(read, checkpoint, publicKey);
      if (!result.ok) {
        stdout.write(`Checkpoint FAILED (seq ${checkpoint.seq}, ${checkpoint.createdAt}): ${result.reason}\n`);
        return ExitCode.DATA;
      }
      const { checked, unkeyedRecords } = result.verification!;
      stdout.write(
        `Checkpoint holds: seq ${checkpoint.seq} signed ${checkpoint.createdAt} by key ${checkpoint.keyId}; ` +
          `${checked} records up to it verified (${unkeyedRecords} without MAC)\n`,
      );
      return ExitCode.OK;
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  },
};
