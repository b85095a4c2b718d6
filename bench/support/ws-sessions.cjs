'use strict';
// P7's client side, in a process of its own (several of them for 10,000 sessions, so no single
// process needs all the sockets): opens MCP WebSocket sessions the documented way (POST
// /api/v1/mcp/tickets with the bearer token, then ws://.../api/v1/mcp/ws?ticket=... with
// subprotocol "mcp", then initialize / notifications/initialized) and holds them idle; on request
// it sends tools/call over random sessions at a rate and churns sessions (close one, open a new
// one). Driven over IPC by bench/scenarios/p7-ws-sessions.ts:
//   {cmd:'open', count}                 -> {type:'opened', ok, failed, retried, error}
// An open that fails (say a 500 when the server's database pool is saturated by the opening
// rush) is retried up to twice; the retries are counted and reported.
//   {cmd:'status'}                      -> {type:'status', open, dropped, codes}
//   {cmd:'traffic', rate, churn, seconds} -> {type:'traffic', calls, ok, failed, p50, p99, churned, churnFailed, firstFailure}
//   {cmd:'exit'}                        closes everything and exits
const WebSocket = require('ws');

const { baseUrl, token, concurrency = 8 } = JSON.parse(process.argv[2]);
const wsBase = baseUrl.replace(/^http/, 'ws');
const sessions = new Set();
let dropped = 0;
const codes = {};

async function ticket() {
  const response = await fetch(`${baseUrl}/api/v1/mcp/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`ticket: ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text).ticket;
}

function request(session, method, params) {
  const id = session.nextId++;
  return new Promise((resolve, reject) => {
    session.pending.set(id, { resolve, reject });
    session.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
  });
}

async function openOne() {
  const socket = new WebSocket(`${wsBase}/api/v1/mcp/ws?ticket=${await ticket()}`, ['mcp'], { perMessageDeflate: false });
  const session = { socket, nextId: 1, pending: new Map(), leaving: false };
  socket.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(String(data));
    } catch {
      return;
    }
    const waiter = message.id !== undefined && session.pending.get(message.id);
    if (!waiter) return;
    session.pending.delete(message.id);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  socket.on('error', () => undefined);
  socket.on('close', (code) => {
    for (const waiter of session.pending.values()) waiter.reject(new Error(`closed ${code}`));
    session.pending.clear();
    if (sessions.delete(session) && !session.leaving) {
      dropped += 1;
      codes[code] = (codes[code] ?? 0) + 1;
    }
  });
  await request(session, 'initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'bench-ws', version: '1.0.0' },
  });
  socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  sessions.add(session);
  return session;
}

async function open(count) {
  let ok = 0;
  let failed = 0;
  let retried = 0;
  let error;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      for (let attempt = 1; ; attempt++) {
        try {
          await openOne();
          ok += 1;
          break;
        } catch (e) {
          error = error ?? String(e && e.message ? e.message : e);
          if (attempt === 3) {
            failed += 1;
            break;
          }
          retried += 1;
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { type: 'opened', ok, failed, retried, error };
}

function pick() {
  const index = Math.floor(Math.random() * sessions.size);
  let i = 0;
  for (const session of sessions) if (i++ === index) return session;
  return undefined;
}

/**
 * A session to churn: one with no call in flight (from a random starting point), so that closing
 * it fails nothing this process is waiting for; closing one mid-call would count the client's
 * own close as a failed call.
 */
function pickIdle() {
  const start = Math.floor(Math.random() * sessions.size);
  let i = 0;
  let first;
  for (const session of sessions) {
    if (session.pending.size > 0) {
      i++;
      continue;
    }
    if (i++ >= start) return session;
    first = first ?? session;
  }
  return first;
}

/** What a failed call said: the JSON-RPC error's message, or the text of a tool result with isError. */
function failureOf(outcome) {
  if (outcome instanceof Error) return outcome.message;
  const text = outcome && Array.isArray(outcome.content) ? outcome.content.find((block) => block && block.type === 'text') : undefined;
  return `tool result isError${text ? `: ${String(text.text).slice(0, 200)}` : ''}`;
}

async function traffic(rate, churn, seconds) {
  const latencies = [];
  let calls = 0;
  let ok = 0;
  let failed = 0;
  let churned = 0;
  let churnFailed = 0;
  let firstFailure;
  const inFlight = [];
  const started = performance.now();
  const end = started + seconds * 1000;
  let nextCall = started;
  let nextChurn = churn > 0 ? started + 1000 / churn : Infinity;
  await new Promise((resolve) => {
    const ticker = setInterval(() => {
      const now = performance.now();
      while (nextCall <= now && nextCall < end) {
        nextCall += 1000 / rate;
        const session = pick();
        if (!session) continue;
        calls += 1;
        const at = performance.now();
        inFlight.push(
          request(session, 'tools/call', { name: 'tool_echo', arguments: { message: 'soak' } }).then(
            (result) => {
              if (result && !result.isError) {
                ok += 1;
                latencies.push(performance.now() - at);
              } else {
                failed += 1;
                firstFailure = firstFailure ?? failureOf(result);
              }
            },
            (error) => {
              failed += 1;
              firstFailure = firstFailure ?? failureOf(error);
            },
          ),
        );
      }
      while (nextChurn <= now && nextChurn < end) {
        nextChurn += 1000 / churn;
        const session = pickIdle();
        if (!session) continue;
        session.leaving = true;
        sessions.delete(session);
        session.socket.close(1000, 'churn');
        inFlight.push(
          openOne().then(
            () => (churned += 1),
            (error) => {
              churnFailed += 1;
              firstFailure = firstFailure ?? `churn: ${failureOf(error)}`;
            },
          ),
        );
      }
      if (now >= end) {
        clearInterval(ticker);
        resolve();
      }
    }, 2);
  });
  await Promise.allSettled(inFlight);
  latencies.sort((a, b) => a - b);
  const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  return { type: 'traffic', calls, ok, failed, p50: at(0.5), p99: at(0.99), churned, churnFailed, firstFailure };
}

process.on('message', (message) => {
  const reply = (promise) =>
    promise.then(
      (result) => process.send(result),
      (error) => process.send({ type: 'error', error: String(error) }),
    );
  if (message.cmd === 'open') reply(open(message.count));
  else if (message.cmd === 'status') process.send({ type: 'status', open: sessions.size, dropped, codes });
  else if (message.cmd === 'traffic') reply(traffic(message.rate, message.churn, message.seconds));
  else if (message.cmd === 'exit') {
    for (const session of sessions) {
      session.leaving = true;
      session.socket.terminate();
    }
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
