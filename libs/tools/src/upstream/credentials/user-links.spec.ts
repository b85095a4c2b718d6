import type { Client } from '@modelcontextprotocol/client';
import type { UpstreamRequestRelay } from '../upstream-request-relay';
import { USER_AUTH_DEFAULTS, UserSecretAuth } from '../upstream-auth';
import { UserLinkPool, UserLinksFullError } from './user-links';

const auth = (extra: Partial<UserSecretAuth> = {}): UserSecretAuth => ({
  mode: 'user-secret',
  header: 'Authorization',
  prefix: 'Bearer ',
  connectUrl: undefined,
  idleMs: USER_AUTH_DEFAULTS.idleMs,
  maxConnections: 10,
  ...extra,
});

/** A pool whose "connections" record the headers they were opened with. */
function poolOf(settings: Partial<UserSecretAuth> = {}) {
  let now = 0;
  const opened: Array<{ headers: Record<string, string>; closed: boolean }> = [];
  const pool = new UserLinkPool(
    auth(settings),
    async (headers) => {
      const record = { headers, closed: false };
      opened.push(record);
      const client = { close: async () => void (record.closed = true), onclose: undefined } as unknown as Client;
      return { client, relays: {} as UpstreamRequestRelay };
    },
    () => now,
  );
  return { pool, opened, advance: (ms: number) => (now += ms) };
}

const credential = (id: string, secret: string, version = 1) => ({ id, version, secret });

describe('UserLinkPool', () => {
  it("opens each user's connection with that user's secret only, and reuses it for that user only", async () => {
    const { pool, opened } = poolOf();
    const [a1, b1, a2] = await Promise.all([
      pool.acquire('usr_a', credential('c_a', 'secret-a')),
      pool.acquire('usr_b', credential('c_b', 'secret-b')),
      pool.acquire('usr_a', credential('c_a', 'secret-a')),
    ]);
    expect(opened.map((o) => o.headers)).toEqual([{ Authorization: 'Bearer secret-a' }, { Authorization: 'Bearer secret-b' }]);
    expect(a1).toBe(a2);
    expect(a1.userId).toBe('usr_a');
    expect(b1.userId).toBe('usr_b');
    expect(b1).not.toBe(a1);
    await pool.closeAll();
  });

  it('a replaced secret (new version) gets a new connection and the old idle one closes', async () => {
    const { pool, opened } = poolOf();
    pool.release(await pool.acquire('usr_a', credential('c_a', 'old', 1)));
    const fresh = await pool.acquire('usr_a', credential('c_a', 'new', 2));
    expect(opened.map((o) => [o.headers.Authorization, o.closed])).toEqual([
      ['Bearer old', true],
      ['Bearer new', false],
    ]);
    expect(fresh.key).toContain('\u00002');
    await pool.closeAll();
  });

  it('closes idle connections after idleMs, never one in use', async () => {
    const { pool, opened, advance } = poolOf({ idleMs: 1_000 });
    const busy = await pool.acquire('usr_a', credential('c_a', 'a'));
    pool.release(await pool.acquire('usr_b', credential('c_b', 'b')));
    advance(1_001);
    pool.sweep();
    expect(opened.map((o) => o.closed)).toEqual([false, true]);
    expect(pool.size).toBe(1);
    pool.release(busy);
    await pool.closeAll();
  });

  it('at maxConnections closes the least recently used idle connection, and refuses when all are busy', async () => {
    const { pool, opened, advance } = poolOf({ maxConnections: 2 });
    pool.release(await pool.acquire('usr_a', credential('c_a', 'a')));
    advance(10);
    const b = await pool.acquire('usr_b', credential('c_b', 'b'));
    advance(10);
    const c = await pool.acquire('usr_c', credential('c_c', 'c'));
    expect(opened.map((o) => o.closed)).toEqual([true, false, false]);
    await expect(pool.acquire('usr_d', credential('c_d', 'd'))).rejects.toBeInstanceOf(UserLinksFullError);
    pool.release(b);
    pool.release(c);
    await pool.closeAll();
  });
});
