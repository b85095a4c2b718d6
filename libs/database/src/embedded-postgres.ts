import { Logger } from '@nestjs/common';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedConnection {
  host: string;
  port: number;
}

const UNIX_SOCKET_PATH_MAX = 100;
const SOCKET_PORT = 5432;
/**
 * An initdb'd and migrated data directory built with the server (scripts/pglite-template.js, from
 * the same PGlite and migrations): a fresh DATA_DIR starts from a copy of it instead of running
 * initdb and every migration, which takes seconds. Absent when running from source (unless the
 * end-to-end suites' global setup put one there: test/support/pglite-template.ts); then PGlite
 * runs initdb.
 */
const TEMPLATE = join(__dirname, '..', 'pglite-template');
const INSTALLATION_IDENTITY = `DO $$ BEGIN
  IF to_regclass('installation') IS NOT NULL THEN
    UPDATE installation SET installation_id = gen_random_uuid(), installed_at = now();
  END IF;
END $$`;

/**
 * The zero-setup default: real Postgres (PGlite, in this process) with its files under
 * DATA_DIR, served to `pg` over a socket so the app uses exactly the same driver, SQL and
 * migrations as with a PostgreSQL server.
 *
 * PGlite has one backend. pglite-socket multiplexes connections onto it message by message,
 * so two pool clients would interleave their extended-protocol messages (unnamed statements
 * and portals overwrite each other) and their transactions. We therefore allow exactly one
 * connection: the pool of size 1 queues work, and every transaction is whole and isolated.
 * The socket is a Unix socket inside DATA_DIR (mode 0700) so no other local user can reach it.
 */
export class EmbeddedPostgres {
  private readonly logger = new Logger(EmbeddedPostgres.name);
  private db: PGlite | undefined;
  private server: PGLiteSocketServer | undefined;
  private lockFile: string | undefined;

  async start(dataDir: string): Promise<EmbeddedConnection> {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      chmodSync(dataDir, 0o700);
    } catch {
      // A mounted volume we do not own (e.g. a root-owned emptyDir) keeps its own mode.
    }
    this.acquireLock(dataDir);

    const started = Date.now();
    // Loaded lazily: deployments on PostgreSQL never pay for the WASM module.
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const pgdata = join(dataDir, 'pglite');
    const fresh = !existsSync(join(pgdata, 'PG_VERSION'));
    const template = fresh && existsSync(join(TEMPLATE, 'PG_VERSION'));
    if (template) {
      // Copied under a temporary name and renamed: a start killed half-way leaves no PG_VERSION
      // behind, so the next one is fresh again.
      const copying = `${pgdata}.copying`;
      rmSync(copying, { recursive: true, force: true });
      rmSync(pgdata, { recursive: true, force: true });
      cpSync(TEMPLATE, copying, { recursive: true });
      renameSync(copying, pgdata);
    }
    this.db = await PGlite.create(pgdata);
    // The template was migrated at build time: this installation gets an identity of its own.
    if (template) await this.db.exec(INSTALLATION_IDENTITY);

    const socketPath = join(dataDir, `.s.PGSQL.${SOCKET_PORT}`);
    const useUnixSocket = socketPath.length <= UNIX_SOCKET_PATH_MAX && process.platform !== 'win32';
    if (useUnixSocket) rmSync(socketPath, { force: true });
    this.server = new PGLiteSocketServer(
      useUnixSocket ? { db: this.db, path: socketPath, maxConnections: 1 } : { db: this.db, host: '127.0.0.1', port: 0, maxConnections: 1 },
    );
    await this.server.start();
    if (useUnixSocket) chmodSync(socketPath, 0o600);

    const connection = useUnixSocket
      ? { host: dataDir, port: SOCKET_PORT }
      : { host: '127.0.0.1', port: Number(this.server.getServerConn().split(':').pop()) };
    const how = !fresh ? 'existing data' : template ? 'new, from the template' : 'new, initdb';
    this.logger.log(`Embedded PostgreSQL (PGlite) ready in ${Date.now() - started} ms (${how}), data in ${dataDir}`);
    return connection;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
    if (this.db && !this.db.closed) await this.db.close();
    this.db = undefined;
    if (this.lockFile) rmSync(this.lockFile, { force: true });
    this.lockFile = undefined;
  }

  /** Two processes on one PGlite directory would corrupt it: refuse while another live pid holds it. */
  private acquireLock(dataDir: string): void {
    const lockFile = join(dataDir, 'pglite.pid');
    try {
      const holder = Number(readFileSync(lockFile, 'utf8').trim());
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new DataDirectoryInUseError(dataDir, holder);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    writeFileSync(lockFile, String(process.pid), { mode: 0o600 });
    this.lockFile = lockFile;
  }
}

/** Another live process owns the embedded database's directory (a running server, say). */
export class DataDirectoryInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: number,
  ) {
    super(`DATA_DIR ${dataDir} is in use by process ${holder}; stop it or set another DATA_DIR`);
    this.name = 'DataDirectoryInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
