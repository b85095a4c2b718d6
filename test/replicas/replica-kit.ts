import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropPrefix, REDIS_URL, sharedSecrets, uniquePrefix } from '../redis/redis-test-kit';
import { freePort, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { toolsEnv } from '../tools/tools-test-kit';

/**
 * Replicas as an operator runs them: built-server processes, each with a data directory and port
 * of its own, sharing what the environment gives them (database, Redis, secrets).
 */
export class ReplicaSet {
  private readonly servers: ServerProcess[] = [];
  private readonly dataDirs: string[] = [];
  private database: TestDatabase | undefined;
  private prefix: string | undefined;

  /**
   * What every replica of one deployment shares: a PostgreSQL database and a Redis key prefix of
   * its own, the secrets, the suites' identity settings (`extra` on top). stopAll drops them.
   */
  async deployment(extra: Record<string, string> = {}): Promise<{ env: Record<string, string>; database: TestDatabase }> {
    this.database = await createTestDatabase();
    this.prefix = uniquePrefix();
    const env = {
      LOG_LEVEL: 'warn',
      DATABASE_URL: this.database.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: this.prefix,
      ...sharedSecrets(),
      ...toolsEnv(),
      MCP_ALLOWED_HOSTS: '127.0.0.1,localhost',
      ...extra,
    };
    return { env, database: this.database };
  }

  /** Starts one more replica and waits until it is ready; its output is in the error if it never is. */
  async start(env: Record<string, string>): Promise<ServerProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), 'smcp-replica-'));
    this.dataDirs.push(dataDir);
    const server = await spawnServer({ ...env, DATA_DIR: dataDir, PORT: String(await freePort()) });
    this.servers.push(server);
    try {
      await waitForHttp(`${server.baseUrl}/api/v1/ready`, 60_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${server.stdout().slice(-3000)}\n${server.stderr().slice(-3000)}`);
    }
    return server;
  }

  /** Kills what is still running and removes the data directories (and the deployment's database and Redis keys). */
  async stopAll(): Promise<void> {
    for (const server of this.servers) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      await server.exited;
    }
    for (const dir of this.dataDirs) rmSync(dir, { recursive: true, force: true });
    if (this.prefix) await dropPrefix(this.prefix);
    await this.database?.drop();
  }
}
