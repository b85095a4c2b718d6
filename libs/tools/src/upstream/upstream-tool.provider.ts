import { Logger } from '@nestjs/common';
import { ProtocolError, ProtocolErrorCode, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import type { Client } from '@modelcontextprotocol/client';
import type { CallToolResult, LoggingMessageNotificationParams, ServerCapabilities, Tool, Transport } from '@modelcontextprotocol/client';
import type { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BackgroundJob, BackgroundJobs, type Clock, type Correlation } from '@app/core';
import { activeContext, inSpan, SpanKind, traceMeta, tracing } from '@app/telemetry';
import { abortedError, ToolError, ToolErrorCode, throwIfAborted } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition, ToolProvider } from '../provider/tool-provider';
import { ToolResult, toolResultOf } from '../provider/tool-result';
import { ReconnectBackoff } from './reconnect-backoff';
import type { UpstreamConfig } from './upstream-config';
import { clip, readFailure, UpstreamErrorCode } from './upstream-failure';
import type { UpstreamPinStore } from './upstream-pin.store';
import { upstreamToolEntryOf, UpstreamToolEntry } from './upstream-tool-definition';
import type { ClientRequestRelay } from '../provider/client-request-relay';
import {
  agentRequestParams,
  inputRequiredError,
  inputRequiredOf,
  RELAY_CLIENT_CAPABILITIES,
  UpstreamRequestRelay,
} from './upstream-request-relay';
import { CALL_MARK_HEADER } from './call-streams';
import { createUpstreamTransport } from './upstream-transport';
import { RelayClient } from './relay-client';
import { isPerUser } from './upstream-auth';
import { credentialRejected, credentialRequired, refusedStatus } from './credentials/credential-errors';
import type { UpstreamCredentialService, UsableCredential } from './credentials/upstream-credential.service';
import { UserLink, UserLinkPool, UserLinksFullError } from './credentials/user-links';

export type UpstreamState = 'connecting' | 'connected' | 'down' | 'stopped';

export interface UpstreamStatus {
  name: string;
  transport: 'stdio' | 'http';
  state: UpstreamState;
  toolCount: number;
  /** Offered tools whose definition differs from the approved one (disabled until approved). */
  pendingApproval: number;
  lastError: string | null;
  lastConnectedAt: Date | null;
  nextRetryAt: Date | null;
  /** Failed attempts since the last successful connection. */
  failures: number;
  /** The child process of a stdio upstream while it runs (tests use it to kill the upstream). */
  pid: number | null;
  /** The protocol era spoken to the upstream while connected: `2026-07-28` or `2025`. */
  era: '2026-07-28' | '2025' | null;
  /** Set when the upstream answered 2026-07-28 out of spec and the gateway speaks the 2025 era to it instead. */
  eraFallback: EraFallback | null;
}

export interface EraFallback {
  /** What the upstream got wrong (the SDK's reading of its answer). */
  reason: string;
  at: Date;
}

export interface UpstreamProviderDeps {
  pins: Pick<UpstreamPinStore, 'observe' | 'approvedHashes'>;
  /** Asks the catalogue to reconcile; resolves when it has. */
  requestReconcile: () => Promise<void>;
  clock: Clock;
  /** Where the health check is scheduled (a private list when not given: unit tests). */
  jobs?: BackgroundJobs;
  createTransport?: (config: UpstreamConfig) => Transport;
  random?: () => number;
  /** The largest upstream result passed on, in bytes of JSON (MCP_UPSTREAM_RESULT_MAX_BYTES); larger ones fail the call. */
  maxResultBytes?: number;
  /** Each user's own credentials (upstreams with a per-user `auth`); without it such calls find none. */
  credentials?: Pick<UpstreamCredentialService, 'forCall' | 'rejected'> &
    Partial<Pick<UpstreamCredentialService, 'connectUrlFor' | 'renew'>>;
}

/** MCP_UPSTREAM_RESULT_MAX_BYTES's default. */
export const DEFAULT_UPSTREAM_RESULT_MAX_BYTES = 4 * 1024 * 1024;

/** How long the catalogue's first reconciliation waits for an upstream still connecting at boot. */
const BOOT_LIST_WAIT_MS = 5_000;
const CLIENT_INFO = { name: 'secure-mcp-gateway', version: '1.0.0' };
const MAX_STDERR_LINE = 500;
/** The JSON-RPC error of a 2026-07-28 server whose Mcp-Param-* headers disagree with the body (SEP-2243; the SDK does not export it). */
const HEADER_MISMATCH = -32020;

/**
 * The tools of one upstream MCP server, through the official v2 client. It connects at start
 * (never holding up boot for long), lists the tools (all pages) at every (re)connection and on
 * `notifications/tools/list_changed`, pins each definition (UpstreamPinStore) and asks the
 * catalogue to reconcile. A broken connection (process exited, HTTP errors, failed pings) marks
 * it down and reconnects with capped, jittered exponential backoff; meanwhile calls fail at once
 * with UPSTREAM_UNAVAILABLE instead of waiting. Calls carry the pipeline's abort signal to the
 * upstream (cancellation), and a tool whose offered definition is not the approved one is never
 * called.
 */
export class UpstreamToolProvider implements ToolProvider {
  readonly name: string;
  private readonly logger = new Logger(UpstreamToolProvider.name);
  private readonly backoff: ReconnectBackoff;
  private readonly createTransport: (config: UpstreamConfig) => Transport;
  private readonly maxResultBytes: number;
  private state: UpstreamState = 'connecting';
  /** Bumped whenever a connection ends: callbacks of older connections then do nothing. */
  private generation = 0;
  private client: Client | null = null;
  /** Server→client requests of the current connection, relayed to the agent whose call is in flight. */
  private relays: UpstreamRequestRelay | null = null;
  private transport: Transport | null = null;
  private entries = new Map<string, UpstreamToolEntry>();
  private approved = new Map<string, string>();
  private listed = false;
  private readonly firstAttempt: Promise<void>;
  private settleFirstAttempt!: () => void;
  private retryTimer: NodeJS.Timeout | undefined;
  private healthJob: BackgroundJob | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly ownJobs = new BackgroundJobs();
  /** Listings are applied one at a time, in order. */
  private listings: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private lastError: string | null = null;
  private lastConnectedAt: Date | null = null;
  private nextRetryAt: Date | null = null;
  /** A modern upstream that answered out of spec is spoken to in the 2025 era until the gateway restarts. */
  private eraFallback: EraFallback | null = null;
  /** Who hears the upstream's 2025-era log messages (UpstreamFeatureService). */
  private readonly logListeners = new Set<(params: LoggingMessageNotificationParams) => void>();
  /** Who hears that the upstream announced a changed tool list (once the catalogue has reconciled). */
  private readonly toolListeners = new Set<() => void>();
  /** Per-user `auth`: the connections carrying each user's own credential (tool calls go over these only). */
  private readonly userLinks: UserLinkPool | null;

  constructor(
    readonly config: UpstreamConfig,
    private readonly deps: UpstreamProviderDeps,
  ) {
    this.name = config.providerName;
    this.backoff = new ReconnectBackoff(config.reconnect.initialDelayMs, config.reconnect.maxDelayMs, deps.random);
    this.createTransport = deps.createTransport ?? ((c) => createUpstreamTransport(c));
    this.maxResultBytes = deps.maxResultBytes ?? DEFAULT_UPSTREAM_RESULT_MAX_BYTES;
    this.firstAttempt = new Promise((resolve) => (this.settleFirstAttempt = resolve));
    this.userLinks = isPerUser(config.auth)
      ? new UserLinkPool(
          config.auth,
          (headers) => this.openUserLink(headers),
          () => deps.clock.nowMs(),
        )
      : null;
  }

  /** Starts connecting; returns at once (a dead upstream must not hold up the gateway). */
  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.generation += 1;
    this.clearTimers();
    this.settleFirstAttempt();
    await Promise.all([this.closeConnection(true), this.userLinks?.closeAll()]);
  }

  status(): UpstreamStatus {
    const pid = this.config.transport === 'stdio' ? ((this.transport as StdioClientTransport | null)?.pid ?? null) : null;
    return {
      name: this.config.name,
      transport: this.config.transport,
      state: this.state,
      toolCount: this.entries.size,
      pendingApproval: [...this.entries.values()].filter((entry) => this.isPending(entry)).length,
      lastError: this.lastError,
      lastConnectedAt: this.lastConnectedAt,
      nextRetryAt: this.state === 'down' ? this.nextRetryAt : null,
      failures: this.backoff.attempts,
      pid: this.state === 'connected' ? pid : null,
      era: this.state === 'connected' && this.client ? (this.client.getProtocolEra() === 'modern' ? '2026-07-28' : '2025') : null,
      eraFallback: this.eraFallback,
    };
  }

  /**
   * The SDK client while connected: the upstream's prompts, resources and the rest use the same
   * connection. None for an upstream with per-user `auth`: its catalogue connection carries the
   * gateway's credential, which must not answer a user's prompt or resource read (not federated yet).
   */
  connectedClient(): Client | null {
    return this.state === 'connected' && !this.userLinks ? this.client : null;
  }

  /** Whether requests go over each caller's own connection (per-user `auth`): see acquireUserLink. */
  get perUser(): boolean {
    return this.userLinks !== null;
  }

  /**
   * What the upstream offers (its server capabilities) as the catalogue connection last saw it,
   * whatever its `auth`: the gateway advertises federated prompts and resources from it. Never a
   * way to reach the upstream.
   */
  offeredCapabilities(): ServerCapabilities | undefined {
    return this.state === 'connected' ? this.client?.getServerCapabilities() : undefined;
  }

  /**
   * Per-user `auth`: the caller's own connection for a request other than a tool call (prompts,
   * resources). Fails as a tool call does (UPSTREAM_CREDENTIAL_REQUIRED with the URL elicitation,
   * UPSTREAM_CREDENTIAL_REJECTED, BUSY, UPSTREAM_UNAVAILABLE); give it back with releaseUserLink.
   */
  acquireUserLink(userId: string, relay: ClientRequestRelay | undefined, correlation?: Correlation, idpToken?: string): Promise<UserLink> {
    return this.userLink({ userId, relay, correlation, idpToken });
  }

  /** Gives back a link from acquireUserLink; `error`: what the request on it failed with (a refusal drops the link and is audited). */
  async releaseUserLink(link: UserLink, userId: string, error?: unknown): Promise<ToolError | undefined> {
    this.userLinks?.release(link);
    if (error === undefined) return undefined;
    const status = refusedStatus(error);
    if (status) {
      this.userLinks?.drop(link);
      await this.deps.credentials?.rejected(userId, this.config.name, status);
      return credentialRejected(this.config.name, status, this.config.auth.mode);
    }
    if (readFailure(error).kind === 'connection') this.userLinks?.drop(link);
    return undefined;
  }

  /**
   * Marks a request of an agent (a tools/call, prompts/get, resources/read) in flight on the
   * current connection until `leave` is called: the upstream's server→client requests and its
   * 2026-07-28 log messages meanwhile reach that agent (see UpstreamRequestRelay). `params` go
   * into the request: on 2026-07-28 what the relay says of the agent (agentRequestParams).
   * `headers` go into the request's options (the SDK's per-request headers): over HTTP the mark
   * its stream comes back with (call-streams.ts; the transport takes it out before it leaves).
   */
  track(
    relay: ClientRequestRelay | undefined,
    on?: { relays: UpstreamRequestRelay; client: Client },
  ): { leave: () => void; params: Record<string, unknown>; headers: Record<string, string> | undefined } {
    const entered = (on ? on.relays : this.relays)?.enter(relay);
    const modern = (on ? on.client : this.client)?.getProtocolEra() === 'modern';
    return {
      leave: entered?.leave ?? (() => undefined),
      params: modern ? agentRequestParams(relay) : {},
      headers: entered && this.config.transport === 'http' ? { [CALL_MARK_HEADER]: entered.mark } : undefined,
    };
  }

  /**
   * The upstream's `notifications/tools/list_changed`, after the catalogue has taken the new
   * listing in: agents hear of it even when nothing they can see changed (a gateway is transparent).
   */
  onToolsChanged(listener: () => void): () => void {
    this.toolListeners.add(listener);
    return () => this.toolListeners.delete(listener);
  }

  /** The upstream's 2025-era log messages (on 2026-07-28 they belong to one request and go to its agent only). */
  onLog(listener: (params: LoggingMessageNotificationParams) => void): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  /**
   * The last listing, each definition marked pending when it is not the approved one. The
   * approvals are re-read every time, so one made on another replica takes effect here at the
   * next reconciliation. Rejects while the upstream has never answered, so the catalogue keeps
   * this provider's tools as they were.
   */
  async listTools(): Promise<ToolDefinition[]> {
    if (!this.listed)
      await waitAtMost(this.firstAttempt, Math.min(BOOT_LIST_WAIT_MS, this.config.timeouts.connectMs + this.config.timeouts.listMs));
    if (!this.listed) throw new Error(`Upstream ${this.config.name} has not listed its tools yet (${this.lastError ?? this.state})`);
    await this.refreshApprovals();
    return [...this.entries.values()].map((entry) => {
      const definition = structuredClone(entry.definition);
      if (this.isPending(entry)) definition.pendingApproval = true;
      return definition;
    });
  }

  /** Re-reads the approved hashes (after an approval) so calls and listings follow them at once. */
  async refreshApprovals(toolIds: string[] = [...this.entries.keys()]): Promise<void> {
    try {
      const fresh = await this.deps.pins.approvedHashes(toolIds);
      const approved = new Map(this.approved);
      for (const id of toolIds) {
        const hash = fresh.get(id);
        if (hash === undefined) approved.delete(id);
        else approved.set(id, hash);
      }
      this.approved = approved;
    } catch (error) {
      this.logger.warn(
        { err: error, upstream: this.config.name },
        'Could not re-read the approved tool definitions; keeping the known ones',
      );
    }
  }

  async execute(toolId: string, input: unknown, ctx: ToolCallContext): Promise<ToolResult> {
    throwIfAborted(ctx.signal);
    // Down since boot: the catalogue still has the tools from an earlier run, this provider not yet.
    if (!this.listed) throw this.unavailable();
    const entry = this.entries.get(toolId);
    if (!entry) throw new ToolError(ToolErrorCode.NOT_FOUND, `Upstream ${this.config.name} does not offer ${toolId}`);
    if (this.isPending(entry)) {
      await this.refreshApprovals([toolId]);
      if (this.isPending(entry)) {
        throw new ToolError(
          UpstreamErrorCode.DEFINITION_NOT_APPROVED,
          `The definition upstream ${this.config.name} now offers for ${toolId} has not been approved by an administrator`,
        );
      }
    }
    // Per-user auth: the call goes over the caller's own connection, never the catalogue's.
    const link = this.userLinks ? await this.userLink(ctx) : undefined;
    const client = link?.client ?? this.client;
    if (!link && (this.state !== 'connected' || !client)) throw this.unavailable();
    if (!client) throw this.unavailable();
    if (this.inFlight >= this.config.maxConcurrentCalls) {
      if (link) this.userLinks?.release(link);
      throw new ToolError(
        ToolErrorCode.BUSY,
        `Upstream ${this.config.name} already has ${this.config.maxConcurrentCalls} calls in flight; try again shortly`,
      );
    }
    const generation = this.generation;
    const report = ctx.reportProgress;
    const relay = ctx.relay;
    this.inFlight += 1;
    const tracked = link ? this.track(relay, link) : this.track(relay);
    let result: CallToolResult;
    try {
      result = (await this.traced(entry.upstreamName, toolId, (traceFields) =>
        client.callTool(
          {
            name: entry.upstreamName,
            arguments: (input ?? {}) as Record<string, unknown>,
            // 2026-07-28: the upstream sees the calling agent's capabilities and log level, not the gateway's, and a retry carries the agent's answers.
            // Both eras: the trace continues upstream through `_meta` (SEP-414) while tracing runs.
            ...withTraceMeta(tracked.params, traceFields),
          },
          {
            // Aborting sends notifications/cancelled (2025) or closes the stream (2026-07-28) upstream.
            signal: ctx.signal,
            timeout: this.config.timeouts.callMs,
            headers: tracked.headers,
            // The definition the gateway listed and pinned: the SDK mirrors its Mcp-Param-* headers and checks the
            // result's structuredContent against it, without looking the tool up in its response cache on every
            // call (two probes, each serialising its key: ~0.5% of a federated call's CPU, issue 18). Over a
            // per-user connection (which lists nothing) the same checks now apply as over the catalogue's.
            toolDefinition: entry.listed,
            // An InputRequiredResult comes back to us (and goes to the agent) instead of the SDK trying to answer it itself.
            allowInputRequired: true,
            ...(report
              ? { onprogress: (p: { progress: number; total?: number; message?: string }) => report(p.progress, p.total, p.message) }
              : {}),
          },
        ),
      )) as CallToolResult;
    } catch (error) {
      // The upstream wants other Mcp-Param-* headers than the listed definition declares: it changed the tool without
      // saying so. The call fails (the SDK would re-list and retry with a definition nobody approved); the re-listing
      // brings the changed definition to the catalogue, pending approval like any change.
      if (error instanceof ProtocolError && error.code === HEADER_MISMATCH) this.relist(generation);
      if (link) throw await this.userLinkFailure(link, error, ctx, toolId);
      if (this.fallBackIfOutOfSpec(client, error)) {
        // Reconnect on the 2025 era: this call fails, the next ones go through.
        this.fail(generation, error, 'call');
        throw new ToolError(
          UpstreamErrorCode.UPSTREAM_UNAVAILABLE,
          `Upstream ${this.config.name} answered protocol revision 2026-07-28 out of spec (${this.eraFallback?.reason}); the gateway reconnects to it on the 2025 era, try again shortly`,
        );
      }
      throw this.callFailure(error, ctx, generation, toolId);
    } finally {
      this.inFlight -= 1;
      tracked.leave();
      if (link) this.userLinks?.release(link);
    }
    const inputRequired = inputRequiredOf(result);
    if (inputRequired) {
      if (!relay) {
        throw new ToolError(
          ToolErrorCode.UPSTREAM_ERROR,
          `Upstream ${this.config.name} needs input from the client (sampling, elicitation or roots), which only an MCP agent can give`,
        );
      }
      relay.inputRequired(inputRequired);
      throw inputRequiredError(this.config.name);
    }
    // The upstream's result as it sent it (an isError result included): the pipeline and both
    // transports render it without rewriting. Only its size is bounded.
    const relayed = toolResultOf(result);
    const bytes = Buffer.byteLength(JSON.stringify(relayed));
    if (bytes > this.maxResultBytes) {
      throw new ToolError(
        ToolErrorCode.RESULT_TOO_LARGE,
        `Upstream ${this.config.name} returned a result of ${bytes} bytes for ${toolId}, over the gateway's limit of ${this.maxResultBytes} bytes (MCP_UPSTREAM_RESULT_MAX_BYTES); nothing of it was passed on`,
      );
    }
    return relayed;
  }

  private async connect(): Promise<void> {
    if (this.state === 'stopped') return;
    const generation = ++this.generation;
    this.state = 'connecting';
    this.nextRetryAt = null;
    let transport: Transport;
    try {
      transport = this.createTransport(this.config);
    } catch (error) {
      this.fail(generation, error, 'connect');
      this.settleFirstAttempt();
      return;
    }
    const client = new RelayClient(CLIENT_INFO, {
      versionNegotiation: { mode: this.eraFallback ? 'legacy' : this.config.protocol },
      // Sampling, elicitation and roots are relayed to the calling agent when it declared them (UpstreamRequestRelay).
      capabilities: RELAY_CLIENT_CAPABILITIES,
      // 2026-07-28: an InputRequiredResult is the agent's to answer, never the gateway's.
      inputRequired: { autoFulfill: false },
      // The provider lists itself, with its own timeout, serialised with (re)connection listings. Prompts and
      // resources are UpstreamFeatureService's (it replaces these handlers); named here so that on 2026-07-28
      // the subscriptions/listen stream the SDK opens asks for their changes too.
      listChanged: {
        tools: { autoRefresh: false, debounceMs: 100, onChanged: () => this.relist(generation) },
        prompts: { autoRefresh: false, onChanged: () => undefined },
        resources: { autoRefresh: false, onChanged: () => undefined },
      },
    });
    client.onclose = () => this.fail(generation, new Error('closed'), 'close');
    client.onerror = (error) => this.transportError(generation, error);
    const relays = new UpstreamRequestRelay(this.config.name);
    relays.install(client, (params) => {
      for (const listener of this.logListeners) listener(params);
    });
    this.client = client;
    this.relays = relays;
    this.transport = transport;
    this.drainStderr(transport);
    try {
      await client.connect(transport, { timeout: this.config.timeouts.connectMs });
      const { tools } = await client.listTools(undefined, { timeout: this.config.timeouts.listMs, cacheMode: 'refresh' });
      await this.serially(() => this.adopt(generation, tools, client));
      if (generation !== this.generation) return;
      this.state = 'connected';
      this.lastError = null;
      this.lastConnectedAt = this.deps.clock.now();
      this.backoff.reset();
      this.startHealthChecks(generation);
      this.logger.log(
        { upstream: this.config.name, tools: this.entries.size, era: client.getProtocolEra() },
        `Upstream ${this.config.name} connected (${this.entries.size} tools)`,
      );
    } catch (error) {
      this.fallBackIfOutOfSpec(client, error);
      this.fail(generation, error, 'connect');
    } finally {
      // Settled before the reconciliation below: that one calls listTools(), which waits for this.
      this.settleFirstAttempt();
    }
    if (generation === this.generation) void this.deps.requestReconcile();
  }

  /** The caller's own connection, opened with their own credential; the ToolError to answer when there is none. */
  private async userLink(ctx: Pick<ToolCallContext, 'userId' | 'relay' | 'correlation' | 'idpToken'>): Promise<UserLink> {
    const auth = this.config.auth;
    if (!this.userLinks || !isPerUser(auth)) throw new Error('not a per-user upstream');
    const found = await this.deps.credentials?.forCall(ctx.userId, this.config.name, ctx.idpToken);
    const required = async () =>
      credentialRequired(this.config.name, auth, ctx.relay, await this.deps.credentials?.connectUrlFor?.(ctx.userId, this.config.name));
    if (!found) throw await required();
    let credential: UsableCredential = found;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.userLinks.acquire(ctx.userId, credential);
      } catch (error) {
        if (error instanceof UserLinksFullError) {
          throw new ToolError(ToolErrorCode.BUSY, `Upstream ${this.config.name}: ${error.message}; try again shortly`);
        }
        const status = refusedStatus(error);
        if (status === 401 && attempt === 0 && auth.mode === 'user-oauth') {
          // user-oauth: a token refused before its stated expiry is refreshed once (shared by every call), then tried again.
          const renewed: UsableCredential | undefined = await this.deps.credentials?.renew?.(ctx.userId, this.config.name, credential);
          if (renewed) {
            credential = renewed;
            continue;
          }
          if (!(await this.deps.credentials?.forCall(ctx.userId, this.config.name, ctx.idpToken))) throw await required();
        }
        if (status) {
          await this.deps.credentials?.rejected(ctx.userId, this.config.name, status);
          throw credentialRejected(this.config.name, status, this.config.auth.mode);
        }
        this.logger.warn({ ...ctx.correlation, err: error, upstream: this.config.name }, 'Opening a per-user upstream connection failed');
        throw this.unavailable(readFailure(error).summary);
      }
    }
  }

  /** A per-user connection: the user's credential in its header, nothing of the gateway's; no listing (the catalogue connection lists). */
  private async openUserLink(headers: Record<string, string>): Promise<{ client: Client; relays: UpstreamRequestRelay }> {
    const transport = this.createTransport({ ...this.config, headers } as UpstreamConfig);
    const client = new RelayClient(CLIENT_INFO, {
      versionNegotiation: { mode: this.eraFallback ? 'legacy' : this.config.protocol },
      capabilities: RELAY_CLIENT_CAPABILITIES,
      inputRequired: { autoFulfill: false },
    });
    client.onerror = (error) => this.logger.debug({ err: error, upstream: this.config.name }, 'Per-user upstream transport error');
    const relays = new UpstreamRequestRelay(this.config.name);
    // 2025-era log messages of a user's own connection are that user's: never broadcast to every agent.
    relays.install(client, () => undefined);
    try {
      await client.connect(transport, { timeout: this.config.timeouts.connectMs });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
    return { client, relays };
  }

  /** A call over a per-user connection failed: only that connection is affected, never the catalogue's. */
  private async userLinkFailure(link: UserLink, error: unknown, ctx: ToolCallContext, toolId: string): Promise<ToolError> {
    if (ctx.signal.aborted) return abortedError(ctx.signal);
    const status = refusedStatus(error);
    if (status) {
      this.userLinks?.drop(link);
      await this.deps.credentials?.rejected(ctx.userId, this.config.name, status);
      return credentialRejected(this.config.name, status, this.config.auth.mode);
    }
    const reading = readFailure(error);
    if (reading.kind === 'connection') {
      this.userLinks?.drop(link);
      return this.unavailable(reading.summary);
    }
    // Timeouts, the upstream's JSON-RPC errors and the rest read as on the catalogue connection (which they do not touch).
    return this.callFailure(error, ctx, -1, toolId);
  }

  /** Applies a listing: entries, pins (new ones pinned, changed ones pending and audited). */
  private async adopt(generation: number, tools: Tool[], client: Client): Promise<void> {
    if (generation !== this.generation) return;
    const version = client.getServerVersion()?.version;
    const entries = new Map<string, UpstreamToolEntry>();
    for (const tool of tools) {
      const entry = upstreamToolEntryOf(this.config, tool, version);
      if ('problem' in entry) {
        this.logger.error({ upstream: this.config.name }, `Upstream tool ignored: ${entry.problem}`);
        continue;
      }
      if (entries.has(entry.toolId)) {
        this.logger.error({ upstream: this.config.name, tool: entry.toolId }, 'Upstream listed a tool name twice; the first listing wins');
        continue;
      }
      entries.set(entry.toolId, entry);
    }
    const approved = await this.deps.pins.observe(this.config.name, [...entries.values()]);
    if (generation !== this.generation) return;
    this.entries = entries;
    this.approved = approved;
    this.listed = true;
  }

  /** `notifications/tools/list_changed`: list again, pin, reconcile. */
  private relist(generation: number): void {
    void this.serially(async () => {
      const client = this.client;
      if (generation !== this.generation || this.state !== 'connected' || !client) return;
      try {
        const { tools } = await client.listTools(undefined, { timeout: this.config.timeouts.listMs, cacheMode: 'refresh' });
        await this.adopt(generation, tools, client);
      } catch (error) {
        if (readFailure(error).kind === 'connection') this.fail(generation, error, 'list');
        else this.logger.warn({ err: error, upstream: this.config.name }, "Re-listing the upstream's tools failed");
        return;
      }
      if (generation !== this.generation) return;
      await this.deps.requestReconcile();
      for (const listener of this.toolListeners) listener();
    });
  }

  /** The connection of `generation` is gone: mark down, drop it, retry later. */
  private fail(
    generation: number,
    error: unknown,
    during: 'connect' | 'close' | 'call' | 'ping' | 'list',
    correlation?: Correlation,
  ): void {
    if (generation !== this.generation || this.state === 'stopped') return;
    this.generation += 1;
    const reading = readFailure(error);
    this.lastError =
      during === 'close'
        ? this.config.transport === 'stdio'
          ? 'the upstream process exited'
          : 'the connection closed'
        : during === 'connect' && reading.kind === 'timeout'
          ? `no answer within ${this.config.timeouts.connectMs} ms`
          : (reading.publicSummary ?? reading.summary);
    const wasConnected = this.state === 'connected';
    this.state = 'down';
    this.clearTimers();
    void this.closeConnection(false);
    const delay = this.backoff.next();
    this.nextRetryAt = new Date(this.deps.clock.nowMs() + delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
    const log = { ...correlation, err: during === 'close' ? undefined : error, upstream: this.config.name, during, retryInMs: delay };
    if (wasConnected) this.logger.warn(log, `Upstream ${this.config.name} is down: ${this.lastError}`);
    else this.logger.warn(log, `Upstream ${this.config.name} could not be reached: ${this.lastError}`);
  }

  /**
   * A call to the upstream as one CLIENT span `tools/call {name}` (MCP and GenAI semantic
   * conventions; never the arguments or the result) whose trace context `send` puts in the
   * request's `_meta`; the HTTP transport adds it as headers too (see upstream-transport.ts).
   * With tracing off `send` gets undefined and nothing else happens.
   */
  private traced<T>(
    upstreamName: string,
    toolId: string,
    send: (traceFields: Record<string, string> | undefined) => Promise<T>,
  ): Promise<T> {
    if (!tracing.tracer) return send(undefined);
    return inSpan(
      `tools/call ${upstreamName}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'mcp.method.name': 'tools/call',
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': upstreamName,
          'app.tool.id': toolId,
          'app.upstream.name': this.config.name,
          ...(this.config.transport === 'http' ? { 'server.address': new URL(this.config.url).hostname } : {}),
        },
      },
      async (span) => {
        const result = await send(traceMeta(activeContext()));
        if (span && (result as { isError?: unknown }).isError === true) span.setAttribute('error.type', 'tool_error');
        return result;
      },
    );
  }

  private callFailure(error: unknown, ctx: ToolCallContext, generation: number, toolId: string): ToolError {
    if (ctx.signal.aborted) return abortedError(ctx.signal);
    const reading = readFailure(error);
    switch (reading.kind) {
      case 'connection':
        this.fail(generation, error, 'call', ctx.correlation);
        return this.unavailable(reading.summary);
      case 'timeout':
        return new ToolError(ToolErrorCode.TIMEOUT, `Upstream ${this.config.name} did not answer within ${this.config.timeouts.callMs} ms`);
      case 'protocol': {
        // The upstream's own JSON-RPC error: MCP agents get it as that error (code, message, data).
        const { code, message, data } = error as ProtocolError;
        return new ToolError(
          code === ProtocolErrorCode.InvalidParams ? ToolErrorCode.INVALID_INPUT : ToolErrorCode.UPSTREAM_ERROR,
          `Upstream ${this.config.name}: ${reading.summary}`,
          undefined,
          data === undefined ? { code, message } : { code, message, data },
        );
      }
      default:
        this.logger.error(
          { ...ctx.correlation, err: error, upstream: this.config.name, tool: toolId },
          'Upstream call failed unexpectedly',
        );
        return new ToolError(ToolErrorCode.UPSTREAM_ERROR, `Upstream ${this.config.name} failed: ${reading.summary}`);
    }
  }

  /**
   * A 2026-07-28 answer the SDK refused as out of spec (e.g. without `resultType`) from an upstream
   * declared `protocol: "auto"`: the gateway speaks the 2025 era to it from the next connection on,
   * says so in the log and in the admin health (`eraFallback`). True when it fell back now.
   */
  private fallBackIfOutOfSpec(client: Client, error: unknown): boolean {
    if (this.config.protocol !== 'auto' || this.eraFallback || client.getProtocolEra() !== 'modern') return false;
    if (!(error instanceof SdkError) || error.code !== SdkErrorCode.InvalidResult) return false;
    const violation = (error.data as { violation?: unknown } | undefined)?.violation;
    const reason = typeof violation === 'string' ? `${clip(error.message)} [${violation}]` : clip(error.message);
    this.eraFallback = { reason, at: this.deps.clock.now() };
    this.logger.warn(
      { upstream: this.config.name, reason },
      `Upstream ${this.config.name} answered protocol revision 2026-07-28 out of spec; falling back to the 2025 era for it`,
    );
    return true;
  }

  private unavailable(reason?: string): ToolError {
    const why = reason ?? (this.state === 'connecting' ? 'still connecting' : (this.lastError ?? this.state));
    const retry = this.state === 'down' && this.nextRetryAt ? '; the gateway is reconnecting' : '';
    return new ToolError(UpstreamErrorCode.UPSTREAM_UNAVAILABLE, `Upstream ${this.config.name} is unavailable (${why})${retry}`);
  }

  /** Errors the transport reports outside a request (e.g. the HTTP event stream dropped): check the link now. */
  private transportError(generation: number, error: Error): void {
    if (generation !== this.generation) return;
    this.logger.debug({ err: error, upstream: this.config.name }, 'Upstream transport reported an error');
    if (this.state !== 'connected' || this.checkTimer) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.ping(generation);
    }, 50);
    this.checkTimer.unref();
  }

  private startHealthChecks(generation: number): void {
    if (this.config.healthCheckMs === 0) return;
    this.healthJob?.stop();
    const jobs = this.deps.jobs ?? this.ownJobs;
    this.healthJob = jobs.every(`upstream.${this.config.name}.health-check`, this.config.healthCheckMs, () => this.ping(generation));
  }

  /** A ping that fails or times out means the upstream is gone or hung: reconnect. */
  private async ping(generation: number): Promise<void> {
    const client = this.client;
    if (!client || generation !== this.generation || this.state !== 'connected') return;
    try {
      await client.ping({ timeout: Math.min(this.config.timeouts.connectMs, 5_000) });
    } catch (error) {
      const kind = readFailure(error).kind;
      if (kind === 'connection' || kind === 'timeout') this.fail(generation, error, 'ping');
    }
  }

  private async closeConnection(graceful: boolean): Promise<void> {
    const client = this.client;
    const transport = this.transport;
    this.client = null;
    this.transport = null;
    this.relays = null;
    if (!client) return;
    if (graceful && transport && 'terminateSession' in transport) {
      // Ends the 2025-era HTTP session politely (DELETE); a server that is gone is not waited for.
      await waitAtMost(
        (transport as { terminateSession(): Promise<void> }).terminateSession().catch(() => undefined),
        1_000,
      );
    }
    await client
      .close()
      .catch((error: unknown) => this.logger.debug({ err: error, upstream: this.config.name }, 'Closing the upstream client failed'));
  }

  private drainStderr(transport: Transport): void {
    const stderr = this.config.transport === 'stdio' ? (transport as StdioClientTransport).stderr : null;
    stderr?.on('data', (chunk: Buffer) => {
      for (const line of String(chunk).split('\n')) {
        if (line.trim()) this.logger.debug({ upstream: this.config.name, line: line.slice(0, MAX_STDERR_LINE) }, 'upstream stderr');
      }
    });
  }

  private isPending(entry: UpstreamToolEntry): boolean {
    return this.approved.get(entry.toolId) !== entry.hash;
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const next = this.listings.then(work);
    this.listings = next.catch(() => undefined);
    return next;
  }

  private clearTimers(): void {
    for (const timer of [this.retryTimer, this.checkTimer]) if (timer) clearTimeout(timer);
    this.healthJob?.stop();
    this.retryTimer = this.checkTimer = this.healthJob = undefined;
  }
}

function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/** Request params with the trace's `_meta` fields (when tracing runs) beside those the params already carry. */
function withTraceMeta(params: Record<string, unknown>, traceFields: Record<string, string> | undefined): Record<string, unknown> {
  if (!traceFields) return params;
  return { ...params, _meta: { ...traceFields, ...((params._meta as Record<string, unknown> | undefined) ?? {}) } };
}
