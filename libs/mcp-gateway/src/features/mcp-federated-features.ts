import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { LoggingLevel, Server, ServerCapabilities, ServerContext } from '@modelcontextprotocol/server';
import { APP_CONFIG, AppConfig, AppException } from '@app/core';
import { FederatedNotification, FederationError, UpstreamFeatureService } from '@app/tools';
import type { ClientRequestRelay } from '@app/tools';
import { refusalOf } from '../errors/mcp-errors';
import { AgentRequestRelays, RelayTarget } from '../relay/agent-request-relay';
import type { McpCaller } from '../tools/mcp-caller';
import type { CallerSource } from '../tools/mcp-server.builder';

/** What one agent connection (a 2025 session or a WebSocket) asked of the federated features. */
/** A prompts/get or resources/read upstream, given the caller, the agent's relay and the signal that cancels it. */
type RelayedFeature<T> = (who: McpCaller, relay: ClientRequestRelay, signal: AbortSignal) => Promise<T>;

interface AgentState {
  caller: McpCaller | null;
  /** The minimum level of relayed log messages (`logging/setLevel`); none are relayed before it is set. */
  level: LoggingLevel | null;
  /** Agent URI → the upstream subscription behind it. */
  subscribed: Map<string, { upstream: string; upstreamUri: string }>;
}

/**
 * The MCP side of federated prompts, resources, resource templates, completions, logging and
 * resource subscriptions (UpstreamFeatureService does the work): the handlers each server gets
 * for the capabilities its upstreams offer, and the relay of upstream notifications to the agent
 * connections that should hear them (McpConnectionRegistry calls `relay` per live connection;
 * 2026-07-28 listeners get list changes through the HTTP endpoint's notifier).
 */
@Injectable()
export class McpFederatedFeatures implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(McpFederatedFeatures.name);
  private readonly pageSize: number;
  private readonly agents = new WeakMap<Server, AgentState>();
  private readonly listeners = new Set<(notification: FederatedNotification) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly features: UpstreamFeatureService,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly relays: AgentRequestRelays,
  ) {
    this.pageSize = config.mcp.pageSize;
  }

  onModuleInit(): void {
    this.unsubscribe = this.features.onNotification((notification) => {
      for (const listener of this.listeners) listener(notification);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** Upstream notifications, for the places that know the live connections. */
  onNotification(listener: (notification: FederatedNotification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The capabilities to advertise besides tools: those at least one connected upstream offers. */
  capabilities(): ServerCapabilities {
    return this.features.capabilities() as ServerCapabilities;
  }

  /**
   * A 2026-07-28 `subscriptions/listen` naming resource URIs (`message`, the parsed body, edited in
   * place): each URI the caller may read is subscribed upstream for as long as the stream lasts,
   * the others are taken out of its filter, so its acknowledgement shows only what is honored and
   * no update of a resource the caller cannot read ever reaches its stream. Returns what ends
   * those subscriptions (to call when the stream has ended), or undefined when there is nothing to do.
   */
  async openListen(caller: McpCaller, message: unknown): Promise<(() => void) | undefined> {
    const request = message as { method?: unknown; params?: { notifications?: { resourceSubscriptions?: unknown } } } | null;
    if (typeof request !== 'object' || request === null || request.method !== 'subscriptions/listen') return undefined;
    const filter = request.params?.notifications;
    const uris = filter?.resourceSubscriptions;
    // A malformed filter is the SDK's to refuse (-32602).
    if (!filter || !Array.isArray(uris) || uris.length === 0 || !uris.every((uri) => typeof uri === 'string')) return undefined;
    const kept: string[] = [];
    const targets: Array<{ upstream: string; upstreamUri: string }> = [];
    for (const uri of new Set(uris as string[])) {
      try {
        targets.push(await this.features.subscribe(caller, uri));
        kept.push(uri);
      } catch (error) {
        this.logger.debug({ err: error, uri }, 'A subscriptions/listen resource URI is not honored');
      }
    }
    filter.resourceSubscriptions = kept;
    return () => {
      for (const target of targets) void this.features.unsubscribe(target.upstream, target.upstreamUri);
    };
  }

  /** The URI agents know for a resource an upstream named in `notifications/resources/updated`. */
  agentUri(notification: Extract<FederatedNotification, { method: 'notifications/resources/updated' }>): string {
    return this.features.agentUri(notification.upstream, notification.uri);
  }

  /** Who this agent connection is, learnt from one of its requests (its notifications carry no caller). */
  noteCaller(server: Server, caller: McpCaller): void {
    const state = this.agents.get(server);
    if (state) state.caller = caller;
  }

  /** The log level a 2025-era agent connection set (`logging/setLevel`), if any. */
  logLevelOf(server: Server): LoggingLevel | null {
    return this.agents.get(server)?.level ?? null;
  }

  /** Installs the handlers of the capabilities the server was built with. */
  register(server: Server, callerOf: CallerSource): void {
    const capabilities = server.getCapabilities();
    const state: AgentState = { caller: null, level: null, subscribed: new Map() };
    this.agents.set(server, state);
    const caller = async (ctx: ServerContext): Promise<McpCaller> => (state.caller = await callerOf(ctx));
    // Sampling, elicitation, roots, input_required rounds and log messages of the upstream reach this agent.
    const relayed = async <T>(ctx: ServerContext, target: RelayTarget, run: RelayedFeature<T>) =>
      this.answer(async () => {
        const who = await caller(ctx);
        return (await this.relays.run(server, who, target, ctx, state.level, (relay, signal) =>
          this.answer(() => run(who, relay, signal)),
        )) as T;
      });
    if (capabilities.prompts) {
      server.setRequestHandler('prompts/list', async (request, ctx) => {
        const prompts = await this.features.listPrompts(await caller(ctx));
        return this.page(
          prompts,
          (prompt) => prompt.name,
          request.params?.cursor,
          (items) => ({ prompts: items.map((p) => p.view) }),
        );
      });
      server.setRequestHandler('prompts/get', async (request, ctx) =>
        relayed(ctx, { kind: 'prompt', id: request.params.name }, (who, relay, signal) =>
          this.features.getPrompt(who, request.params.name, request.params.arguments, signal, relay),
        ),
      );
    }
    if (capabilities.resources) {
      server.setRequestHandler('resources/list', async (request, ctx) => {
        const resources = await this.features.listResources(await caller(ctx));
        return this.page(
          resources,
          (resource) => resource.uri,
          request.params?.cursor,
          (items) => ({
            resources: items.map((r) => r.view),
          }),
        );
      });
      server.setRequestHandler('resources/templates/list', async (request, ctx) => {
        const templates = await this.features.listTemplates(await caller(ctx));
        return this.page(
          templates,
          (template) => template.uriTemplate,
          request.params?.cursor,
          (items) => ({
            resourceTemplates: items.map((t) => t.view),
          }),
        );
      });
      server.setRequestHandler('resources/read', async (request, ctx) =>
        relayed(ctx, { kind: 'resource', id: request.params.uri }, (who, relay, signal) =>
          this.features.readResource(who, request.params.uri, signal, relay),
        ),
      );
      if (capabilities.resources.subscribe) {
        server.setRequestHandler('resources/subscribe', async (request, ctx) =>
          this.answer(async () => {
            const uri = request.params.uri;
            if (!state.subscribed.has(uri)) state.subscribed.set(uri, await this.features.subscribe(await caller(ctx), uri));
            return {};
          }),
        );
        server.setRequestHandler('resources/unsubscribe', async (request) =>
          this.answer(async () => {
            const target = state.subscribed.get(request.params.uri);
            state.subscribed.delete(request.params.uri);
            if (target) await this.features.unsubscribe(target.upstream, target.upstreamUri);
            return {};
          }),
        );
      }
    }
    // 2025 era: the agent's roots changed; the upstreams it uses hear of it (known once it has made a request: noteCaller).
    server.setNotificationHandler('notifications/roots/list_changed', async () => {
      if (state.caller) await this.features.rootsChanged(state.caller);
    });
    // The connection has ended: its subscriptions and log level no longer count.
    const previous = server.onclose;
    server.onclose = () => {
      previous?.();
      for (const target of state.subscribed.values()) void this.features.unsubscribe(target.upstream, target.upstreamUri);
      state.subscribed.clear();
      this.features.releaseAgent(state);
    };
    if (capabilities.completions) {
      server.setRequestHandler('completion/complete', async (request, ctx) =>
        this.answer(async () => this.features.complete(await caller(ctx), request.params, ctx.mcpReq.signal)),
      );
    }
    if (capabilities.logging) {
      server.setRequestHandler('logging/setLevel', async (request, ctx) =>
        this.answer(async () => {
          state.level = request.params.level;
          await this.features.setLoggingLevel(state, await caller(ctx), request.params.level);
          return {};
        }),
      );
    }
  }

  /**
   * Passes an upstream notification to one agent connection when it concerns it: list changes
   * to servers advertising that feature, resource updates to the agents subscribed to the
   * resource, log messages at or above the level the agent set, from upstreams it may use.
   */
  relay(server: Server, notification: FederatedNotification): void {
    const state = this.agents.get(server);
    const capabilities = server.getCapabilities();
    const deliver = (message: Parameters<Server['notification']>[0]) =>
      server.notification(message).catch((error: unknown) => this.logger.debug({ err: error }, `${message.method} not delivered`));
    switch (notification.method) {
      case 'notifications/prompts/list_changed':
        if (capabilities.prompts && this.mayHear(state, notification.upstream)) void deliver({ method: notification.method });
        return;
      case 'notifications/resources/list_changed':
        if (capabilities.resources && this.mayHear(state, notification.upstream)) void deliver({ method: notification.method });
        return;
      case 'notifications/resources/updated': {
        if (!state) return;
        for (const [uri, target] of state.subscribed) {
          if (target.upstream === notification.upstream && target.upstreamUri === notification.uri) {
            void deliver({ method: notification.method, params: { uri } });
          }
        }
        return;
      }
      case 'notifications/message':
        if (!capabilities.logging || !state?.level || !state.caller) return;
        if (!UpstreamFeatureService.passes(notification.params.level, state.level)) return;
        if (!this.features.mayReceiveFrom(state.caller, notification.upstream)) return;
        void deliver({ method: notification.method, params: notification.params });
        return;
    }
  }

  private mayHear(state: AgentState | undefined, upstream: string): boolean {
    return !state?.caller || this.features.mayReceiveFrom(state.caller, upstream);
  }

  /** One page of a sorted listing; the cursor is the last key of the previous page. */
  private page<T, R extends object>(items: T[], key: (item: T) => string, cursor: string | undefined, shape: (page: T[]) => R): R {
    let start = 0;
    if (cursor !== undefined) {
      const after = typeof cursor === 'string' && cursor.length <= 4096 ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
      if (!after || Buffer.from(after, 'utf8').toString('base64url') !== cursor) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid cursor');
      }
      start = items.findIndex((item) => key(item) > after);
      if (start < 0) start = items.length;
    }
    const slice = items.slice(start, start + this.pageSize);
    const result = shape(slice);
    if (start + this.pageSize < items.length) {
      return { ...result, nextCursor: Buffer.from(key(slice[slice.length - 1]), 'utf8').toString('base64url') };
    }
    return result;
  }

  /** Runs a handler; the gateway's refusals and the upstream's errors become JSON-RPC errors. */
  private async answer<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof FederationError) throw new ProtocolError(error.code, error.message, error.data);
      if (error instanceof AppException) {
        const refused = refusalOf(error)!;
        const retryAfter = refused.headers['Retry-After'];
        throw new ProtocolError(refused.code, refused.message, {
          ...refused.data,
          ...(retryAfter ? { retryAfter: Number(retryAfter) } : {}),
        });
      }
      throw error;
    }
  }
}
