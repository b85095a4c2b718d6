import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import Redis from 'ioredis';
import { REDIS_URL } from '../redis/redis-test-kit';
import type { ServerProcess } from '../support/server-process';
import { http } from '../support/test-app';
import { login, signUp } from '../tools/tools-test-kit';
import { EXCHANGE_CLIENT_ID, EXCHANGE_CLIENT_SECRET, ExchangeIdp } from '../upstream/exchange-idp';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from '../upstream/upstream-test-kit';
import { startWhoami, whoamiEntry } from '../upstream/whoami-kit';
import { ReplicaSet } from './replica-kit';

const AUDIENCE = 'api://crm-replicas';
const LISTING_TOKEN = 'gateway-listing-token-replicas-9';

/**
 * Issue 17, token exchange across replicas: two built-server replicas sharing Redis exchange a
 * user's token once for the deployment (the second replica takes the first one's, sealed in Redis
 * under ENCRYPTION_KEY), and Redis holds no plaintext token.
 */
describe('Token exchange shared between replicas', () => {
  const replicas = new ReplicaSet();
  let idp: ExchangeIdp;
  let upstream: ReferenceUpstream;
  let a: ServerProcess;
  let b: ServerProcess;
  let prefix: string;

  beforeAll(async () => {
    idp = await ExchangeIdp.start('secure-mcp-gateway');
    upstream = await startWhoami([LISTING_TOKEN], [idp.jwksUri, AUDIENCE]);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signingKey = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    idp.trust(createPublicKey(privateKey));
    const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-exchange-replicas-')), [
      whoamiEntry('UPSTREAM_CRMR_LISTING')('crmr', upstream.url, {
        auth: {
          mode: 'token-exchange',
          tokenEndpoint: idp.tokenEndpoint,
          clientId: EXCHANGE_CLIENT_ID,
          clientSecret: { fromEnv: 'UPSTREAM_CRMR_SECRET' },
          audience: AUDIENCE,
        },
      }),
    ]);
    const { env } = await replicas.deployment({
      MCP_UPSTREAMS_FILE: file,
      UPSTREAM_CRMR_LISTING: LISTING_TOKEN,
      UPSTREAM_CRMR_SECRET: EXCHANGE_CLIENT_SECRET,
      OAUTH_SIGNING_KEY: signingKey,
    });
    prefix = env.REDIS_KEY_PREFIX;
    [a, b] = await Promise.all([replicas.start(env), replicas.start(env)]);
  });

  afterAll(async () => {
    await replicas.stopAll();
    upstream?.child.kill('SIGTERM');
    await idp?.close();
  });

  it('exactly one exchange reaches the IdP for the same user calling through both replicas', async () => {
    const user = await signUp(a, 'rita.replicas@example.com');
    const onB = await login(b, 'rita.replicas@example.com');
    const call = (server: ServerProcess, token: string) =>
      http(server.baseUrl, 'POST', '/api/v1/tools/crmr.whoami/execute', { token, body: { parameters: {} } });
    const first = await waitFor('the crmr tool on replica A', async () => {
      const res = await call(a, user.token);
      return res.body?.status === 'completed' ? res : undefined;
    });
    const second = await waitFor('the crmr tool on replica B', async () => {
      const res = await call(b, onB.token);
      return res.body?.status === 'completed' ? res : undefined;
    });
    const [tokenA, tokenB] = [first.body.result.structuredContent.token, second.body.result.structuredContent.token];
    expect(decodeJwt(String(tokenA)).sub).toBe(user.userId);
    expect(tokenB).toBe(tokenA);
    expect(idp.exchanges.filter((granted) => granted.sub === user.userId)).toEqual([{ sub: user.userId, audience: AUDIENCE }]);

    // What Redis holds for it is sealed: no key or value carries the token.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const keys = (await redis.keys(`${prefix}uxc:*`)).filter((key) => key.includes(user.userId));
      expect(keys).toHaveLength(1);
      const value = String(await redis.get(keys[0]));
      expect(value.split('.')[0]).toBe('uc1');
      expect(value.includes(String(tokenA))).toBe(false);
    } finally {
      redis.disconnect();
    }
  });
});
