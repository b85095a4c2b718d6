import { Agent, request } from 'node:http';
import { exitWithin, FaultServer, loginAdmin, sleep, startFaultServer, unlimitEcho } from './fault-kit';

/**
 * SIGTERM while many keep-alive clients sit idle on their connections (a load balancer's pool, a
 * fleet of agents between calls) and a few calls are in flight. The idle connections must not
 * hold the shutdown up: they are closed at once, the calls in flight are answered, and the
 * process exits 0 long before its grace period. PostgreSQL only, for the same reason as
 * sigterm-under-load: a real process, its signal and its exit code.
 */
const GRACE_MS = 20_000;
const IDLE_CLIENTS = 200;
const IN_FLIGHT = 8;
const CALL_MS = 1_500;

interface Answer {
  status?: number;
  body?: string;
  error?: string;
}

function send(port: number, agent: Agent, options: { method: string; path: string; token?: string; body?: unknown }): Promise<Answer> {
  return new Promise((resolve) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method,
        path: options.path,
        agent,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    req.end(payload);
  });
}

describe('SIGTERM with idle keep-alive clients (built server on PostgreSQL)', () => {
  let fault: FaultServer;
  afterAll(() => fault?.cleanup());

  it('closes the idle connections at once, answers the calls in flight and exits 0 well within the grace period', async () => {
    fault = await startFaultServer((database) => database.url, { SHUTDOWN_GRACE_MS: String(GRACE_MS) });
    const { server } = fault;
    const token = await loginAdmin(server.baseUrl);
    await unlimitEcho(server.baseUrl, token);

    // Each client made one request and keeps its connection open, idle.
    const idleAgent = new Agent({ keepAlive: true, maxSockets: IDLE_CLIENTS, keepAliveMsecs: 60_000 });
    const warmed = await Promise.all(
      Array.from({ length: IDLE_CLIENTS }, () => send(server.port, idleAgent, { method: 'GET', path: '/api/v1/health' })),
    );
    expect(warmed.filter((a) => a.status !== 200)).toEqual([]);
    const idleSockets = Object.values(idleAgent.freeSockets).flat();
    expect(idleSockets.length).toBe(IDLE_CLIENTS);
    const idleClosed = idleSockets.map((socket) => new Promise<void>((resolve) => socket!.once('close', () => resolve())));

    const callAgent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
    const calls = Array.from({ length: IN_FLIGHT }, (_, i) =>
      send(server.port, callAgent, {
        method: 'POST',
        path: '/api/v1/tools/tool_echo/execute',
        token,
        body: { parameters: { message: `in flight ${i}`, delayMs: CALL_MS } },
      }),
    );
    // The calls are read and running before the signal.
    await sleep(CALL_MS / 3);

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    await Promise.all(idleClosed);
    const idleClosedAfterMs = Date.now() - signalledAt;
    const answers = await Promise.all(calls);
    const exitCode = await exitWithin(server, GRACE_MS + 5_000);
    const exitedAfterMs = Date.now() - signalledAt;
    idleAgent.destroy();
    callAgent.destroy();

    expect(answers.map((a) => ({ status: a.status, message: a.body ? JSON.parse(a.body).result?.message : a.error }))).toEqual(
      Array.from({ length: IN_FLIGHT }, (_, i) => ({ status: 200, message: `in flight ${i}` })),
    );
    expect(exitCode).toBe(0);
    // "At once" and "well within": the idle connections close before the calls in flight end, and
    // the exit follows the drain, not the grace timer (a quarter of it is far more than the drain).
    expect(idleClosedAfterMs).toBeLessThan(CALL_MS);
    expect(exitedAfterMs).toBeLessThan(GRACE_MS / 4);
    process.stdout.write(`${JSON.stringify({ idleClosedAfterMs, exitedAfterMs })}\n`);
  });
});
