'use strict';
// Closed-loop load on the OAuth sign-in page: each of `connections` workers signs in back to back
// as a browser does — GET the authorization URL (303 to the page, the interaction cookies), GET the
// page (its anti-forgery value), POST email and password (303 on success) — with its own cookies.
//   node sign-in-storm.cjs <json: {authorizeUrl, email, password, seconds, connections}>
// Prints {completed, failed, rate, p50, p99, firstError} on stdout (milliseconds). The rate is the
// steady one, from the completion times of the sign-ins that finished within the run:
// (n - 1) / (last - first), so the ramp-up (every worker's first sign-in) does not dilute it.
const http = require('node:http');

const { authorizeUrl, email, password, seconds, connections } = JSON.parse(process.argv[2]);
const base = new URL(authorizeUrl);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

function request(method, path, cookies, body) {
  return new Promise((resolve, reject) => {
    const headers = { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') };
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ agent, host: base.hostname, port: base.port, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        for (const line of res.headers['set-cookie'] ?? []) {
          const pair = line.split(';')[0];
          const at = pair.indexOf('=');
          cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
        }
        resolve({ status: res.statusCode, location: res.headers.location, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function signIn() {
  const cookies = new Map();
  const start = await request('GET', base.pathname + base.search, cookies);
  if (start.status !== 303 || !start.location) throw new Error(`authorize answered ${start.status}`);
  const pagePath = new URL(start.location, base).pathname;
  const page = await request('GET', pagePath, cookies);
  const csrf = /name="csrf" value="([^"]*)"/.exec(page.text)?.[1];
  if (page.status !== 200 || !csrf) throw new Error(`sign-in page answered ${page.status}`);
  const form = new URLSearchParams({ csrf, email, password }).toString();
  const done = await request('POST', `${pagePath}/login`, cookies, form);
  if (done.status !== 303) throw new Error(`sign-in answered ${done.status}`);
}

const latencies = [];
const finishedAt = [];
let failed = 0;
let firstError = null;
const end = performance.now() + seconds * 1000;

async function worker() {
  while (performance.now() < end) {
    const started = performance.now();
    try {
      await signIn();
      const now = performance.now();
      if (now <= end) {
        latencies.push(now - started);
        finishedAt.push(now);
      }
    } catch (error) {
      failed += 1;
      firstError ??= String(error && error.message ? error.message : error);
    }
  }
}

Promise.all(Array.from({ length: connections }, worker)).then(() => {
  const span = finishedAt.length >= 2 ? (finishedAt[finishedAt.length - 1] - finishedAt[0]) / 1000 : NaN;
  latencies.sort((a, b) => a - b);
  const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  process.stdout.write(
    JSON.stringify({ completed: latencies.length, failed, rate: (finishedAt.length - 1) / span, p50: at(0.5), p99: at(0.99), firstError }),
  );
  agent.destroy();
});
