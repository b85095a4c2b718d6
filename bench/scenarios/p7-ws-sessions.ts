/**
 * P7. BENCH_WS_SESSIONS (default 10,000) idle MCP WebSocket sessions, then a soak of mixed
 * traffic (BENCH_SOAK_S, default 600 s).
 *
 * The built server runs as a process of its own on a fresh PostgreSQL database, so its resident
 * set (VmRSS in /proc/<pid>/status) is its alone. Client sockets come from child processes
 * (support/ws-sessions.cjs, up to 2,500 sessions each): ticket, upgrade with subprotocol "mcp",
 * initialize, then idle. Reported: how many sessions are still held after BENCH_IDLE_S idle
 * seconds, RSS per idle session ((RSS after - RSS before) / sessions held), and over the soak
 * (tools/call over random WebSocket sessions, session churn, MCP tools/call over HTTP and REST
 * reads, all at steady rates) the growth of RSS from its start to its end.
 * Goals: all held; <= 30 KB per idle session; RSS growth <= 10 % over the soak.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../../test/support/test-database';
import { log } from '../support/bench-util';
import { benchEnv, loginAdmin, raiseToolLimit, rssKb, spawnServer, waitReady } from '../support/gateway';
import { openLoop, Target } from '../support/load';
import { mcpRequest } from '../support/mcp-request';
import { fmt, Row, Scenario } from '../support/report';

const PER_CLIENT = 2_500;
const KB_GOAL = 30;
const GROWTH_GOAL = 10;

interface ClientReply {
  type: string;
  [key: string]: unknown;
}

/** One client process and a way to ask it things (one question at a time). */
class Clients {
  private constructor(private readonly child: ChildProcess) {}

  static start(baseUrl: string, token: string): Clients {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
        'sh',
        process.execPath,
        join(__dirname, '..', 'support', 'ws-sessions.cjs'),
        JSON.stringify({ baseUrl, token }),
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    return new Clients(child);
  }

  ask<T extends ClientReply>(message: Record<string, unknown>, type: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: ClientReply) => {
        if (reply.type !== type && reply.type !== 'error') return;
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        if (reply.type === 'error') reject(new Error(String(reply.error)));
        else resolve(reply as T);
      };
      const onExit = (code: number | null) => {
        this.child.off('message', onMessage);
        reject(new Error(`a WebSocket client process exited (${code})`));
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(message);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.send({ cmd: 'exit' });
    setTimeout(() => this.child.kill('SIGKILL'), 5_000).unref();
  }
}

interface Status extends ClientReply {
  open: number;
  dropped: number;
  codes: Record<string, number>;
}

async function status(clients: Clients[]): Promise<{ open: number; dropped: number; codes: Record<string, number> }> {
  const all = await Promise.all(clients.map((c) => c.ask<Status>({ cmd: 'status' }, 'status')));
  const codes: Record<string, number> = {};
  for (const s of all) for (const [code, n] of Object.entries(s.codes)) codes[code] = (codes[code] ?? 0) + n;
  return { open: all.reduce((sum, s) => sum + s.open, 0), dropped: all.reduce((sum, s) => sum + s.dropped, 0), codes };
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function lastLines(text: string, n: number): string {
  return text
    .trim()
    .split('\n')
    .slice(-n)
    .map((line) => `  ${line.slice(0, 400)}`)
    .join('\n');
}

export const p7: Scenario = {
  id: 'P7',
  what: 'idle MCP WebSocket sessions, then a soak of mixed traffic',
  async run(s): Promise<Row> {
    const database = await createTestDatabase('smcp_bench');
    const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
    const server = await spawnServer('dist', benchEnv(database, dataDir), { log: 'tail' });
    const clients: Clients[] = [];
    try {
      await waitReady(server, 60_000, 50);
      const token = await loginAdmin(server.url);
      await raiseToolLimit(server.url, token, 'tool_echo');

      // Warm the paths (ticket, upgrade, initialize, close) before the first RSS reading.
      const warm = Clients.start(server.url, token);
      clients.push(warm);
      const warmed = await warm.ask<ClientReply & { ok: number; failed: number; error?: string }>(
        { cmd: 'open', count: Math.min(20, s.wsSessions) },
        'opened',
      );
      if (warmed.ok === 0) throw new Error(`no WebSocket session could be opened: ${warmed.error}`);
      warm.stop();
      clients.pop();
      await sleep(s.smoke ? 500 : 3_000);
      const before = rssKb(server.pid);

      const processes = Math.ceil(s.wsSessions / PER_CLIENT);
      for (let i = 0; i < processes; i++) clients.push(Clients.start(server.url, token));
      const started = Date.now();
      const opened = await Promise.all(
        clients.map((c, i) =>
          c.ask<ClientReply & { ok: number; failed: number; retried: number; error?: string }>(
            { cmd: 'open', count: Math.min(PER_CLIENT, s.wsSessions - i * PER_CLIENT) },
            'opened',
          ),
        ),
      );
      const ok = opened.reduce((sum, o) => sum + o.ok, 0);
      const refused = opened.reduce((sum, o) => sum + o.failed, 0);
      const retried = opened.reduce((sum, o) => sum + o.retried, 0);
      const firstError = opened.find((o) => o.error)?.error;
      log(
        `[P7] opened ${ok}/${s.wsSessions} sessions in ${((Date.now() - started) / 1000).toFixed(1)}s from ${processes} client process(es)` +
          `${retried ? `; ${retried} attempts retried` : ''}${refused ? `; ${refused} failed` : ''}${firstError ? ` (first error: ${firstError})` : ''}`,
      );
      if (firstError) log(`[P7] server log, last lines at warn and above:\n${lastLines(server.log(), 5)}`);
      await sleep(s.idleSeconds * 1000);
      const idle = await status(clients);
      const after = rssKb(server.pid);
      const perSession = (after - before) / Math.max(1, idle.open);
      log(
        `[P7] after ${s.idleSeconds}s idle: ${idle.open} held, ${idle.dropped} dropped; RSS ${fmt(before / 1024)} MB -> ${fmt(after / 1024)} MB, ${perSession.toFixed(1)} KB per session`,
      );

      // The soak: every kind of traffic at a steady rate, RSS sampled throughout.
      const soakStart = rssKb(server.pid);
      const samples: number[] = [soakStart];
      const every = Math.max(1, Math.min(10, s.soakSeconds / 60)) * 1000;
      let soaking = true;
      const sampler = (async () => {
        while (soaking) {
          await sleep(every);
          if (soaking) samples.push(rssKb(server.pid));
        }
      })();
      const reads: Target = { url: `${server.url}/api/v1/tools`, method: 'GET', headers: { authorization: `Bearer ${token}` } };
      const calls = mcpRequest(`${server.url}/api/v1/mcp`, 'tools/call', { name: 'tool_echo', arguments: { message: 'soak' } }, token);
      const perClient = s.soakRate / clients.length;
      const [wsTraffic, readLoad, callLoad] = await Promise.all([
        Promise.all(
          clients.map((c) =>
            c.ask<ClientReply & { calls: number; failed: number; churned: number; churnFailed: number; firstFailure?: string }>(
              { cmd: 'traffic', rate: perClient, churn: 1 / clients.length, seconds: s.soakSeconds },
              'traffic',
            ),
          ),
        ),
        openLoop(reads, s.soakRate, s.soakSeconds, 32),
        openLoop(calls, Math.max(1, s.soakRate / 2), s.soakSeconds, 32),
      ]);
      soaking = false;
      await sampler;
      const soakEnd = rssKb(server.pid);
      const peak = Math.max(...samples, soakEnd);
      const growth = ((soakEnd - soakStart) / soakStart) * 100;
      const end = await status(clients);
      const wsCalls = wsTraffic.reduce((sum, t) => sum + t.calls, 0);
      const wsFailed = wsTraffic.reduce((sum, t) => sum + t.failed, 0);
      const churned = wsTraffic.reduce((sum, t) => sum + t.churned, 0);
      const churnFailed = wsTraffic.reduce((sum, t) => sum + t.churnFailed, 0);
      const wsFailure = wsTraffic.find((t) => t.firstFailure !== undefined)?.firstFailure;
      log(
        `[P7] soak ${s.soakSeconds}s: RSS ${fmt(soakStart / 1024)} MB -> ${fmt(soakEnd / 1024)} MB (peak ${fmt(peak / 1024)} MB, ${growth.toFixed(1)} %); ` +
          `${wsCalls} WebSocket calls (${wsFailed} failed), ${churned} sessions churned (${churnFailed} failed), ` +
          `${readLoad.ok} REST reads (p99 ${readLoad.p99.toFixed(1)} ms), ${callLoad.ok} HTTP MCP calls (p99 ${callLoad.p99.toFixed(1)} ms); ${end.open} sessions held at the end`,
      );

      const allHeld = idle.open === s.wsSessions && idle.dropped === 0;
      const failures = wsFailed + churnFailed + readLoad.failed + callLoad.failed;
      return {
        id: 'P7',
        what: `${s.wsSessions.toLocaleString('en-US')} idle MCP WebSocket sessions, ${s.soakSeconds} s soak`,
        baseline: `RSS ${fmt(before / 1024)} MB before the sessions`,
        candidate: `${idle.open.toLocaleString('en-US')}/${s.wsSessions.toLocaleString('en-US')} held; ${perSession.toFixed(1)} KB/session; soak RSS ${fmt(soakStart / 1024)} → ${fmt(soakEnd / 1024)} MB`,
        ratio: `growth ${growth.toFixed(1)} %`,
        goal: `all held; ≤ ${KB_GOAL} KB/session; growth ≤ ${GROWTH_GOAL} %`,
        met: allHeld && perSession <= KB_GOAL && growth <= GROWTH_GOAL,
        notes: [
          `P7: built server (${process.env.BENCH_SERVER_DIST ?? process.env.TEST_SERVER_DIST ?? 'dist/'}), ${processes} client process(es); ` +
            `soak traffic: WebSocket tools/call ${s.soakRate}/s, 1 session churned/s, REST GET /tools ${s.soakRate}/s, HTTP MCP tools/call ${Math.max(1, s.soakRate / 2)}/s; ` +
            `RSS peak ${fmt(peak / 1024)} MB; ${end.open} sessions held after the soak` +
            (Object.keys(idle.codes).length ? `; close codes while idle: ${JSON.stringify(idle.codes)}` : ''),
          ...(retried > 0 ? [`P7: ${retried} session opens were retried while opening (first error: ${firstError})`] : []),
          ...(ok < s.wsSessions ? [`P7: only ${ok} of ${s.wsSessions} sessions could be opened (${firstError})`] : []),
        ],
        problems:
          failures > 0
            ? [`P7: ${failures} failed calls or churns during the soak${wsFailure ? ` (first WebSocket failure: ${wsFailure})` : ''}`]
            : [],
      };
    } finally {
      // Ending 10,000 sessions gracefully is not what is measured here; the database goes anyway.
      await server.stop('SIGKILL');
      for (const c of clients) c.stop();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};
