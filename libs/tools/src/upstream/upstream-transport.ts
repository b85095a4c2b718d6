import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { FetchLike, Transport } from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { activeContext, tracing, withTraceHeaders } from '@app/telemetry';
import { callStreamFetch } from './call-streams';
import { upstreamFetch } from './upstream-fetch';
import type { HttpUpstreamConfig, StdioUpstreamConfig, UpstreamConfig } from './upstream-config';

export interface TransportOptions {
  /** Tests only: observe the HTTP requests the transport makes. */
  fetch?: FetchLike;
}

/**
 * The SDK transport for one connection attempt (a fresh one each time: a closed transport
 * cannot be restarted). Nothing of an inbound request reaches it: the headers are the gateway's
 * own credentials from the config, so a client's token never leaves the gateway.
 */
export function createUpstreamTransport(config: UpstreamConfig, options: TransportOptions = {}): Transport {
  return config.transport === 'stdio' ? stdioTransport(config) : httpTransport(config, options);
}

/**
 * The environment a stdio upstream gets: exactly the configured one. The SDK always merges
 * getDefaultEnvironment() (HOME, LOGNAME, PATH, SHELL, TERM, USER of this process) underneath;
 * those keys are overridden with undefined, which child_process.spawn leaves out, unless the
 * config sets them itself.
 */
export function upstreamEnvironment(config: StdioUpstreamConfig): Record<string, string> {
  const withheld = Object.fromEntries(Object.keys(getDefaultEnvironment()).map((key) => [key, undefined]));
  return { ...withheld, ...config.env } as Record<string, string>;
}

function stdioTransport(config: StdioUpstreamConfig): StdioClientTransport {
  // cross-spawn with shell: false: the arguments reach the program as given, never a shell.
  return new StdioClientTransport({
    command: config.command,
    args: [...config.args],
    env: upstreamEnvironment(config),
    cwd: config.cwd,
    // Piped, not inherited: the provider reads it into the log at debug level.
    stderr: 'pipe',
  });
}

function httpTransport(config: HttpUpstreamConfig, options: TransportOptions): StreamableHTTPClientTransport {
  // Node's HTTP client over kept-alive connections, not the global fetch (see upstream-fetch.ts).
  const send: FetchLike = options.fetch ?? upstreamFetch();
  // While tracing runs, each request to the upstream carries the active trace context (W3C headers).
  const traced: FetchLike = tracing.tracer ? (url, init) => send(url, withTraceHeaders(init, activeContext())) : send;
  return new StreamableHTTPClientTransport(new URL(config.url), {
    requestInit: { headers: { ...config.headers } },
    // Redirects stay on the configured origin (the SDK's default, stated because credentials ride along).
    redirectPolicy: 'same-origin',
    // The server-to-client SSE stream retries briefly on its own; longer outages are the provider's reconnect loop.
    reconnectionOptions: { initialReconnectionDelay: 250, maxReconnectionDelay: 2_000, reconnectionDelayGrowFactor: 2, maxRetries: 2 },
    // Server→client requests and log messages come back marked with the agent request they concern (call-streams.ts).
    fetch: callStreamFetch(traced),
  });
}
