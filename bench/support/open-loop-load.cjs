'use strict';
// Open-loop load for latency at a steady rate: requests are sent on a fixed schedule (not when
// the previous one returned), so a slow server cannot slow the load down and hide its queueing
// (no coordinated omission). Latency runs from the moment each request is written, timed with
// performance.now() (sub-millisecond).
//   node open-loop-load.cjs <json: {url, method, headers, body, rate, seconds, connections}>  (method: POST by default)
// Prints {sent, ok, failed, achievedRate, p50, p90, p99, max} (milliseconds) on stdout.
const http = require('node:http');

const { url, method = 'POST', headers, body = '', rate, seconds, connections } = JSON.parse(process.argv[2]);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const payload = Buffer.from(body);
const latencies = [];
let sent = 0;
let ok = 0;
let failed = 0;
let outstanding = 0;

function fire() {
  const startedAt = performance.now();
  sent += 1;
  outstanding += 1;
  const request = http.request(
    {
      agent,
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method,
      headers: method === 'GET' ? headers : { ...headers, 'content-length': payload.length },
    },
    (response) => {
      response.on('data', () => undefined);
      response.on('end', () => {
        outstanding -= 1;
        if (response.statusCode === 200) {
          ok += 1;
          latencies.push(performance.now() - startedAt);
        } else failed += 1;
      });
    },
  );
  request.on('error', () => {
    outstanding -= 1;
    failed += 1;
  });
  request.end(method === 'GET' ? undefined : payload);
}

const started = performance.now();
const interval = 1000 / rate;
let next = started;
const end = started + seconds * 1000;
// A 1 ms timer sends whatever the schedule says is due (at 1000/s: one request per tick).
const ticker = setInterval(() => {
  const now = performance.now();
  while (next <= now && next < end) {
    fire();
    next += interval;
  }
  if (next >= end) {
    clearInterval(ticker);
    const wait = setInterval(() => {
      if (outstanding > 0 && performance.now() < end + 10_000) return;
      clearInterval(wait);
      latencies.sort((a, b) => a - b);
      const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
      process.stdout.write(
        JSON.stringify({
          sent,
          ok,
          failed,
          achievedRate: ok / seconds,
          p50: at(0.5),
          p90: at(0.9),
          p99: at(0.99),
          max: latencies[latencies.length - 1] ?? NaN,
        }),
      );
      agent.destroy();
    }, 20);
  }
}, 1);
