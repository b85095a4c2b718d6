import { Injectable, Logger } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Client, ProtocolError, UriTemplate } from '@modelcontextprotocol/client';
import type {
  CompleteRequestParams,
  CompleteResult,
  GetPromptResult,
  LoggingLevel,
  LoggingMessageNotificationParams,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplateType,
  ServerCapabilities,
} from '@modelcontextprotocol/client';
import type { Counter } from 'prom-client';
import { AuditAction, auditEvent } from '@app/audit';
import { AppException, Clock, ErrorCode, ExecutionScope, IDP_SUBJECT_TOKEN, Permission, rateWindowMs, SignedInActor } from '@app/core';
import { ExecutionRecorder } from '../execution/execution-recorder';
import { RateLimitStore } from '../rate-limit/rate-limit-store';
import { rateLimitHeaders, ToolRateLimiter } from '../rate-limit/tool-rate-limiter';
import { ClientRequestRelay, logLevelPasses } from '../provider/client-request-relay';
import { federatedPromptName, federatedUri, isFederatedUri, parseFederatedUri } from './federated-names';
import { readFailure } from './upstream-failure';
import { inputRequiredOf } from './upstream-request-relay';
import { UPSTREAM_FEATURE_REQUESTS_METRIC } from './upstream-feature-metrics';
import type { UpstreamToolProvider } from './upstream-tool.provider';
import { UpstreamRegistry } from './upstream.registry';
import { promptPinEntry, templatePinEntry } from './upstream-feature-pins';
import { UpstreamPinStore } from './upstream-pin.store';
import type { PinnableEntry } from './upstream-tool-definition';
import { ToolError } from '../provider/tool-error';
import { CredentialErrorCode } from './credentials/credential-errors';
import { FeatureLease, featureRefusalOf, LeaseHolder, userFeatureLease } from './credentials/user-feature-lease';

/** A JSON-RPC error for the agent: the upstream's own (code, message, data as sent) or the gateway's refusal. */
export class FederationError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
    /** `upstream`: the upstream's own JSON-RPC error, passed on as it sent it; `gateway`: our refusal. */
    readonly origin: 'gateway' | 'upstream' = 'gateway',
  ) {
    super(message);
    this.name = 'FederationError';
  }
}

/** JSON-RPC codes of the gateway's own refusals here. */
export const FederationErrorCode = {
  INVALID_PARAMS: -32602,
  /** The spec's "resource not found" (the SDK puts -32602 on the wire, as 2026-07-28 says; data carries the URI). */
  RESOURCE_NOT_FOUND: -32002,
  /** Upstream unavailable, timed out, rate limited: the gateway's own refusal (data.error says which). */
  SERVER_ERROR: -32000,
} as const;

export interface FederatedPrompt {
  /** The name agents see (see federated-names.ts). */
  name: string;
  upstream: string;
  upstreamName: string;
  permissions: readonly string[];
  view: Prompt;
  /** Its definition pin (see upstream-feature-pins.ts). */
  pin: PinnableEntry;
}

export interface FederatedResource {
  uri: string;
  upstream: string;
  upstreamUri: string;
  permissions: readonly string[];
  view: Resource;
}

export interface FederatedTemplate {
  uriTemplate: string;
  upstream: string;
  permissions: readonly string[];
  view: ResourceTemplateType;
  matcher: UriTemplate;
  pin: PinnableEntry;
}

/** What the gateway advertises for its upstreams' features (merged into the server's capabilities). */
export type FederatedCapabilities = Pick<ServerCapabilities, 'prompts' | 'resources' | 'completions' | 'logging'>;

/** A notification an upstream sent that concerns agents (relayed by the MCP gateway). */
export type FederatedNotification =
  /** The upstream announced a changed tool list (the catalogue has it): relayed to 2026-07-28 listen streams. */
  | { method: 'notifications/tools/list_changed'; upstream: string }
  | { method: 'notifications/prompts/list_changed'; upstream: string }
  | { method: 'notifications/resources/list_changed'; upstream: string }
  | { method: 'notifications/resources/updated'; upstream: string; uri: string }
  | { method: 'notifications/message'; upstream: string; params: LoggingMessageNotificationParams };

interface Listing {
  client: Client;
  prompts?: Promise<FederatedPrompt[]>;
  resources?: Promise<FederatedResource[]>;
  templates?: Promise<FederatedTemplate[]>;
}

type Caller = ExecutionScope & Pick<SignedInActor, 'ipAddress' | 'userAgent'>;

/**
 * Whose listing of per-user upstreams to include: that user's own, read over their own connection.
 * `request` stands for the request being served (the caller object): a credential refused once is
 * not tried again by the same request.
 */
type Lister = LeaseHolder & { permissions: readonly string[]; request: object };

function listerOf(caller: Caller): Lister {
  return {
    userId: caller.principal.userId,
    permissions: caller.principal.permissions,
    correlation: caller.correlation,
    idpToken: caller.principal[IDP_SUBJECT_TOKEN],
    request: caller,
  };
}

/** An upstream subscription behind agents' subscriptions to one resource: how many asked, and a 2026-07-28 listen stream's handle. */
interface UpstreamSubscription {
  agents: number;
  listen?: { close(): Promise<void> };
}

/**
 * Everything an upstream offers besides tools — prompts, resources, resource templates,
 * completions, logging and resource subscriptions — federated under the same identity and
 * permissions as its tools: an item is visible to (and usable by) a caller holding
 * `tools:execute` and every permission the upstream is declared with, and on a context only when
 * it is one of the context's members. Listings are cached per connection (re-read after a
 * reconnection or the upstream's `list_changed`); `prompts/get` and `resources/read` are
 * rate limited per user like a tool call (the upstream's `rateLimit`, plus the context's budget),
 * audited and counted.
 */
@Injectable()
export class UpstreamFeatureService {
  private readonly logger = new Logger(UpstreamFeatureService.name);
  private readonly listings = new Map<string, Listing>();
  /** Listings of per-user upstreams, per user connection (each user's own; gone with the connection). */
  private readonly userListings = new WeakMap<Client, Listing>();
  /** Per request (see Lister): the per-user upstreams whose credential was missing or refused, and why. */
  private readonly refusals = new WeakMap<object, Map<string, FederationError>>();
  private readonly wired = new WeakSet<Client>();
  private readonly listeners = new Set<(notification: FederatedNotification) => void>();
  /** Subscriptions per upstream and original URI: how many agents asked (unsubscribed upstream at 0). */
  private readonly subscriptions = new Map<string, UpstreamSubscription>();
  /** The log level each live 2025-era agent connection set (see setLoggingLevel). */
  private readonly agentLevels = new Map<object, { caller: Caller; level: LoggingLevel }>();
  /** The level each 2025-era upstream connection was last set to. */
  private readonly appliedLevels = new WeakMap<Client, LoggingLevel>();
  /** Approved definition hash per pin key of the listed prompts and templates. */
  private approved = new Map<string, string>();

  constructor(
    private readonly registry: UpstreamRegistry,
    private readonly recorder: ExecutionRecorder,
    private readonly limiter: ToolRateLimiter,
    private readonly rates: RateLimitStore,
    private readonly clock: Clock,
    private readonly pins: UpstreamPinStore,
    @InjectMetric(UPSTREAM_FEATURE_REQUESTS_METRIC) private readonly requests: Counter<string>,
  ) {
    for (const provider of registry.all()) {
      const upstream = provider.config.name;
      provider.onLog((params) => this.emit({ method: 'notifications/message', upstream, params }));
      provider.onToolsChanged(() => this.emit({ method: 'notifications/tools/list_changed', upstream }));
    }
  }

  /**
   * Capabilities the connected upstreams offer now (empty when none offers any), in either era
   * they are reached on: `logging` (2026-07-28: the agent's level goes with each of its requests),
   * `resources.subscribe` (2026-07-28: resource URIs on a subscriptions/listen stream).
   */
  capabilities(): FederatedCapabilities {
    const capabilities: FederatedCapabilities = {};
    for (const provider of this.registry.all()) {
      // Per-user upstreams too: what they offer is known from the catalogue connection, served over each user's own.
      const offered = provider.offeredCapabilities();
      if (!offered) continue;
      if (offered.prompts) capabilities.prompts = { listChanged: true };
      if (offered.resources) {
        capabilities.resources = {
          listChanged: true,
          subscribe: capabilities.resources?.subscribe === true || offered.resources.subscribe === true,
        };
      }
      if (offered.completions) capabilities.completions = {};
      if (offered.logging) capabilities.logging = {};
    }
    return capabilities;
  }

  /** Upstream notifications agents may need (list changes, resource updates, log messages). */
  onNotification(listener: (notification: FederatedNotification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async listPrompts(caller: Caller): Promise<FederatedPrompt[]> {
    const all = await this.allPrompts(listerOf(caller));
    return all
      .filter((prompt) => !this.isPending(prompt.pin) && this.mayUse(caller, prompt.permissions) && inContext(caller, prompt.name))
      .sort(byKey((p) => p.name));
  }

  async listResources(caller: Caller): Promise<FederatedResource[]> {
    const all = await this.allResources(listerOf(caller));
    return all.filter((resource) => this.mayUse(caller, resource.permissions) && inContext(caller, resource.uri)).sort(byKey((r) => r.uri));
  }

  async listTemplates(caller: Caller): Promise<FederatedTemplate[]> {
    const all = await this.allTemplates(listerOf(caller));
    return all
      .filter(
        (template) => !this.isPending(template.pin) && this.mayUse(caller, template.permissions) && inContext(caller, template.uriTemplate),
      )
      .sort(byKey((t) => t.uriTemplate));
  }

  /**
   * Whether `id` (a member of a context's `tools` that is no catalogue tool) names a federated
   * prompt, resource or resource template of a connected upstream, and whether `principal` may
   * use it: contexts take these as members like tools.
   */
  async membership(
    principal: Pick<ExecutionScope['principal'], 'permissions'> & { userId?: string },
    id: string,
  ): Promise<'member' | 'forbidden' | 'unknown'> {
    // A per-user upstream's items are known from the principal's own listing only.
    const lister = principal.userId ? { userId: principal.userId, permissions: principal.permissions, request: principal } : undefined;
    const [prompts, resources, templates] = await Promise.all([
      this.allPrompts(lister),
      this.allResources(lister),
      this.allTemplates(lister),
    ]);
    const found =
      prompts.find((prompt) => prompt.name === id) ??
      resources.find((resource) => resource.uri === id) ??
      templates.find((template) => template.uriTemplate === id);
    if (!found) return 'unknown';
    return this.holds(principal.permissions, found.permissions) ? 'member' : 'forbidden';
  }

  /** Re-reads the approved hashes of these pin keys (after an administrator's approval). */
  async refreshApprovals(keys: string[]): Promise<void> {
    const fresh = await this.pins.approvedHashes(keys);
    const approved = new Map(this.approved);
    for (const key of keys) {
      const hash = fresh.get(key);
      if (hash === undefined) approved.delete(key);
      else approved.set(key, hash);
    }
    this.approved = approved;
  }

  private isPending(pin: PinnableEntry): boolean {
    return this.approved.get(pin.toolId) !== pin.hash;
  }

  /** Pins what an upstream offers now (new ones trusted, changed ones held) and remembers the approved hashes. */
  private async pinAll(upstream: string, entries: PinnableEntry[]): Promise<void> {
    const approved = await this.pins.observe(upstream, entries);
    const merged = new Map(this.approved);
    for (const entry of entries) {
      const hash = approved.get(entry.toolId);
      if (hash === undefined) merged.delete(entry.toolId);
      else merged.set(entry.toolId, hash);
    }
    this.approved = merged;
  }

  /** Every upstream's prompts; those of per-user upstreams only as `lister`'s own connection lists them. */
  private allPrompts(lister?: Lister): Promise<FederatedPrompt[]> {
    return this.gather((provider, listing) => (listing.prompts ??= this.readPrompts(provider, listing.client)), lister);
  }

  private allResources(lister?: Lister): Promise<FederatedResource[]> {
    return this.gather((provider, listing) => (listing.resources ??= this.readResources(provider, listing.client)), lister);
  }

  private allTemplates(lister?: Lister): Promise<FederatedTemplate[]> {
    return this.gather((provider, listing) => (listing.templates ??= this.readTemplates(provider, listing.client)), lister);
  }

  /**
   * `prompts/get`. With the agent's `relay`, the upstream's server→client requests and log
   * messages reach that agent, and an InputRequiredResult (2026-07-28) is handed to the relay
   * (and returned as it came: the agent gets the relay's sealed copy).
   */
  async getPrompt(
    caller: Caller,
    name: string,
    args: Record<string, string> | undefined,
    signal?: AbortSignal,
    relay?: ClientRequestRelay,
  ): Promise<GetPromptResult> {
    let prompt = (await this.listPrompts(caller)).find((candidate) => candidate.name === name);
    if (!prompt) {
      // A changed definition an administrator may just have approved (on any replica): read the approvals again.
      const held = (await this.allPrompts(listerOf(caller))).find((candidate) => candidate.name === name && this.isPending(candidate.pin));
      if (held && this.mayUse(caller, held.permissions) && inContext(caller, held.name)) {
        await this.refreshApprovals([held.pin.toolId]);
        if (this.isPending(held.pin)) {
          throw new FederationError(
            FederationErrorCode.SERVER_ERROR,
            `The definition upstream ${held.upstream} now offers for prompt ${name} has not been approved by an administrator`,
            { error: 'DEFINITION_NOT_APPROVED' },
          );
        }
        prompt = held;
      }
    }
    if (!prompt) {
      // A prompt of a per-user upstream the caller cannot list without a credential of their own: say what is missing.
      await this.requireOwnCredential(caller, name, relay);
      throw new FederationError(FederationErrorCode.INVALID_PARAMS, `Unknown prompt: ${name}`);
    }
    const provider = this.provider(prompt.upstream);
    return this.forward(caller, provider, 'prompt', prompt.name, relay, async (client, extras, headers) => {
      const params = args === undefined ? { name: prompt.upstreamName } : { name: prompt.upstreamName, arguments: args };
      return (await client.getPrompt(
        { ...params, ...extras },
        { signal, timeout: provider.config.timeouts.callMs, allowInputRequired: true, headers },
      )) as GetPromptResult;
    });
  }

  /** `resources/read` (with the agent's `relay` as for getPrompt). */
  async readResource(caller: Caller, uri: string, signal?: AbortSignal, relay?: ClientRequestRelay): Promise<ReadResourceResult> {
    const target = await this.resolveUri(caller, uri);
    if (!target) throw new FederationError(FederationErrorCode.RESOURCE_NOT_FOUND, 'Resource not found', { uri });
    const provider = target.provider;
    const result = await this.forward(caller, provider, 'resource', uri, relay, async (client, extras, headers) => {
      return (await client.readResource(
        { uri: target.upstreamUri, ...extras },
        { signal, timeout: provider.config.timeouts.callMs, cacheMode: 'bypass', allowInputRequired: true, headers },
      )) as ReadResourceResult;
    });
    if (inputRequiredOf(result)) return result;
    // The contents name the URIs the agent knows (rewritten like the listing's).
    return {
      ...result,
      contents: result.contents.map((content) =>
        typeof content.uri === 'string'
          ? { ...content, uri: federatedUri(provider.config.name, provider.config.idPrefix, content.uri) }
          : content,
      ),
    };
  }

  /**
   * `completion/complete`, to the upstream that owns the prompt or resource template (the
   * template's URI mapped back). Not audited (no content is read), but refused like a read for
   * anything the caller cannot see.
   */
  async complete(caller: Caller, params: CompleteRequestParams, signal?: AbortSignal): Promise<CompleteResult> {
    const ref = params.ref;
    let provider: UpstreamToolProvider;
    let upstreamRef: CompleteRequestParams['ref'];
    if (ref.type === 'ref/prompt') {
      const prompt = (await this.listPrompts(caller)).find((candidate) => candidate.name === ref.name);
      if (!prompt) throw new FederationError(FederationErrorCode.INVALID_PARAMS, `Unknown prompt: ${ref.name}`);
      provider = this.provider(prompt.upstream);
      upstreamRef = { ...ref, name: prompt.upstreamName };
    } else {
      const template = (await this.listTemplates(caller)).find((candidate) => candidate.uriTemplate === ref.uri);
      if (!template) throw new FederationError(FederationErrorCode.INVALID_PARAMS, `Unknown resource template: ${ref.uri}`);
      provider = this.provider(template.upstream);
      upstreamRef = { ...ref, uri: originalOf(template) };
    }
    const lease = await this.leaseFor(caller, provider, undefined);
    try {
      if (!lease.client.getServerCapabilities()?.completions) {
        throw new FederationError(-32601, `Upstream ${provider.config.name} does not offer completions`);
      }
      const result = (await lease.client.complete(
        { ...params, ref: upstreamRef },
        { signal, timeout: provider.config.timeouts.callMs },
      )) as CompleteResult;
      await lease.end();
      return result;
    } catch (error) {
      const refused = await lease.end(error);
      throw refused ? this.refusal(refused) : this.failure(provider, error);
    }
  }

  /** `resources/subscribe`: subscribes upstream (once per URI, however many agents ask). */
  async subscribe(caller: Caller, uri: string): Promise<{ upstream: string; upstreamUri: string }> {
    const target = await this.resolveUri(caller, uri);
    if (!target) throw new FederationError(FederationErrorCode.RESOURCE_NOT_FOUND, 'Resource not found', { uri });
    if (target.provider.perUser) {
      // One upstream subscription serves every agent subscribed to a URI: it cannot carry each user's own credential.
      throw new FederationError(
        -32601,
        `Upstream ${target.provider.config.name} acts with each user's own credential: resource subscriptions are not offered for it`,
      );
    }
    const client = this.clientOf(target.provider);
    if (!client.getServerCapabilities()?.resources?.subscribe) {
      throw new FederationError(-32601, `Upstream ${target.provider.config.name} does not offer resource subscriptions`);
    }
    const key = subscriptionKey(target.provider.config.name, target.upstreamUri);
    const existing = this.subscriptions.get(key);
    if (existing) {
      existing.agents += 1;
    } else {
      const options = { timeout: target.provider.config.timeouts.callMs };
      const subscription: UpstreamSubscription = { agents: 1 };
      try {
        // 2026-07-28 has no resources/subscribe: the URI goes on a subscriptions/listen stream of its own.
        if (client.getProtocolEra() === 'modern') {
          subscription.listen = await client.listen({ resourceSubscriptions: [target.upstreamUri] }, options);
        } else await client.subscribeResource({ uri: target.upstreamUri }, options);
      } catch (error) {
        throw this.failure(target.provider, error);
      }
      // Another agent may have subscribed meanwhile: one upstream subscription is enough.
      const raced = this.subscriptions.get(key);
      if (raced) {
        raced.agents += 1;
        void subscription.listen?.close();
      } else this.subscriptions.set(key, subscription);
    }
    return { upstream: target.provider.config.name, upstreamUri: target.upstreamUri };
  }

  /** `resources/unsubscribe` (or an agent gone): unsubscribes upstream when no agent is left. */
  async unsubscribe(upstream: string, upstreamUri: string): Promise<void> {
    const key = subscriptionKey(upstream, upstreamUri);
    const subscription = this.subscriptions.get(key);
    if (subscription && subscription.agents > 1) {
      subscription.agents -= 1;
      return;
    }
    this.subscriptions.delete(key);
    if (subscription?.listen) return subscription.listen.close();
    const client = this.registry.get(upstream)?.connectedClient();
    if (!client || client.getProtocolEra() === 'modern') return;
    await client
      .unsubscribeResource({ uri: upstreamUri })
      .catch((error: unknown) => this.logger.debug({ err: error, upstream }, 'Unsubscribing upstream failed'));
  }

  /** The agent-facing URI of a resource an upstream named (for relayed `resources/updated`). */
  agentUri(upstream: string, uri: string): string {
    const provider = this.registry.get(upstream);
    return provider ? federatedUri(upstream, provider.config.idPrefix, uri) : uri;
  }

  /**
   * `logging/setLevel` of one agent connection (`agent`: any object standing for it, released with
   * releaseAgent). A 2025-era upstream connection is shared by every agent, so each one offering
   * logging is set to the least severe level any agent that may use it asked for, and the gateway
   * filters relayed messages per agent by that agent's own level: one agent's level never
   * silences another's messages. Upstreams reached on 2026-07-28 get the agent's level with each
   * of its requests instead.
   */
  async setLoggingLevel(agent: object, caller: Caller, level: LoggingLevel): Promise<void> {
    this.agentLevels.set(agent, { caller, level });
    await this.applyLevels();
  }

  /**
   * A 2025-era agent's `notifications/roots/list_changed`: passed on to each 2025-era upstream the
   * agent may use (it may ask roots/list again, which reaches the agent of the call it asks in).
   * On 2026-07-28 roots travel with each request (input requests): nothing to pass on.
   */
  async rootsChanged(caller: Caller): Promise<void> {
    await Promise.all(
      this.registry.all().map(async (provider) => {
        const client = provider.connectedClient();
        if (!client || client.getProtocolEra() === 'modern' || !this.mayUse(caller, provider.config.permissions)) return;
        await client
          .sendRootsListChanged()
          .catch((error: unknown) => this.logger.debug({ err: error, upstream: provider.config.name }, 'roots/list_changed not passed on'));
      }),
    );
  }

  /** An agent connection has ended: its level no longer counts. */
  releaseAgent(agent: object): void {
    if (this.agentLevels.delete(agent)) void this.applyLevels();
  }

  private async applyLevels(): Promise<void> {
    await Promise.all(
      this.registry.all().map(async (provider) => {
        const client = provider.connectedClient();
        if (!client?.getServerCapabilities()?.logging || client.getProtocolEra() === 'modern') return;
        const wanted = [...this.agentLevels.values()]
          .filter((entry) => this.mayUse(entry.caller, provider.config.permissions))
          .map((entry) => entry.level);
        if (wanted.length === 0) return;
        const level = wanted.reduce((least, candidate) => (logLevelPasses(least, candidate) ? candidate : least));
        if (this.appliedLevels.get(client) === level) return;
        this.appliedLevels.set(client, level);
        await client.setLoggingLevel(level, { timeout: provider.config.timeouts.callMs }).catch((error: unknown) => {
          this.appliedLevels.delete(client);
          this.logger.warn({ err: error, upstream: provider.config.name }, 'Setting the upstream log level failed');
        });
      }),
    );
  }

  /** Whether a relayed log message of `upstream` may go to this caller (permissions of the upstream). */
  mayReceiveFrom(caller: Caller, upstream: string): boolean {
    const provider = this.registry.get(upstream);
    return provider !== undefined && this.mayUse(caller, provider.config.permissions);
  }

  /** Whether a level passes an agent's minimum (`logging/setLevel`). */
  static passes(level: LoggingLevel, minimum: LoggingLevel): boolean {
    return logLevelPasses(level, minimum);
  }

  private mayUse(caller: Caller, permissions: readonly string[]): boolean {
    return this.holds(caller.principal.permissions, permissions);
  }

  private holds(held: readonly string[], permissions: readonly string[]): boolean {
    return held.includes(Permission.TOOLS_EXECUTE) && permissions.every((permission) => held.includes(permission));
  }

  /** The upstream and its own URI for an agent's URI; null when no upstream visible to the caller has it. */
  private async resolveUri(caller: Caller, uri: string): Promise<{ provider: UpstreamToolProvider; upstreamUri: string } | null> {
    const parsed = parseFederatedUri(uri);
    if (isFederatedUri(uri) && !parsed) return null;
    // One after the other: a per-user credential the first listing found refused is not tried (and audited) twice.
    const resources = await this.listResources(caller);
    const templates = await this.listTemplates(caller);
    const listed = resources.find((resource) => resource.uri === uri);
    if (listed) return { provider: this.provider(listed.upstream), upstreamUri: listed.upstreamUri };
    const template = templates.find((candidate) => candidate.matcher.match(uri) !== null);
    // An expansion of a template whose changed definition awaits approval is not read either.
    if (
      !template &&
      (await this.allTemplates(listerOf(caller))).some((held) => this.isPending(held.pin) && held.matcher.match(uri) !== null)
    )
      return null;
    if (template) {
      const provider = this.provider(template.upstream);
      return { provider, upstreamUri: parsed && parsed.upstream === template.upstream ? parsed.uri : uri };
    }
    if (parsed) {
      // A URI of an upstream the caller may use that neither lists nor templates it (e.g. one a tool returned).
      const provider = this.registry.get(parsed.upstream);
      if (!provider || provider.config.idPrefix === '' || !this.mayUse(caller, provider.config.permissions)) return null;
      if (caller.context) return null; // a context shows its members only
      return { provider, upstreamUri: parsed.uri };
    }
    // An unlisted URI in no gateway scheme: an empty-prefix upstream's, if exactly one may be asked.
    if (caller.context) return null;
    const candidates = this.registry
      .all()
      .filter((provider) => provider.config.idPrefix === '' && this.mayUse(caller, provider.config.permissions));
    return candidates.length === 1 ? { provider: candidates[0], upstreamUri: uri } : null;
  }

  /**
   * Rate limit, call, audit and count one prompts/get or resources/read. While it runs the
   * request is in flight for the agent's `relay`; on 2026-07-28 it carries what the relay says of
   * the agent (`extras`: capabilities, log level, a retry's answers) and, in `headers`, the mark
   * its stream comes back with (UpstreamToolProvider.track), and an InputRequiredResult
   * goes to the relay (an agent without one cannot answer it: an error).
   */
  private async forward<T>(
    caller: Caller,
    provider: UpstreamToolProvider,
    kind: 'prompt' | 'resource',
    id: string,
    relay: ClientRequestRelay | undefined,
    call: (client: Client, extras: Record<string, unknown>, headers: Record<string, string> | undefined) => Promise<T>,
  ): Promise<T> {
    const upstream = provider.config.name;
    const record = (result: 'success' | 'failure', reason?: string) => this.recordRead(caller, kind, id, upstream, result, reason);
    // A refusal or failure is reported as itself even when its audit record cannot be written (logged);
    // an answer goes out only once its audit record is committed, as a tool call's does.
    const recordFailure = (reason: string) => this.recordReadFailure(caller, kind, id, upstream, reason);
    try {
      await this.consume(caller, provider, kind, id);
    } catch (error) {
      this.requests.inc({ kind, upstream, status: 'refused' });
      await recordFailure(ErrorCode.RATE_LIMIT_EXCEEDED);
      throw error;
    }
    let result: T;
    let lease: FeatureLease | undefined;
    try {
      // Per-user auth: the caller's own connection (a missing or refused credential fails here, audited below).
      lease = await this.leaseFor(caller, provider, relay);
      result = await call(lease.client, lease.params, lease.headers);
      const inputRequired = inputRequiredOf(result);
      if (inputRequired) {
        if (!relay) throw new FederationError(FederationErrorCode.SERVER_ERROR, `Upstream ${upstream} needs input from the client first`);
        relay.inputRequired(inputRequired);
      }
    } catch (error) {
      const refused = await lease?.end(error);
      const failure = refused ? this.refusal(refused) : error instanceof FederationError ? error : this.failure(provider, error);
      this.requests.inc({ kind, upstream, status: 'failed' });
      await recordFailure(failure.message);
      throw failure;
    } finally {
      await lease?.end();
    }
    await record('success');
    this.requests.inc({ kind, upstream, status: 'completed' });
    return result;
  }

  /** One prompts/get or resources/read in the audit trail, with its user (through the tool pipeline's group commit). */
  private recordRead(
    caller: Caller,
    kind: 'prompt' | 'resource',
    id: string,
    upstream: string,
    result: 'success' | 'failure',
    reason?: string,
  ): Promise<void> {
    const action = kind === 'prompt' ? AuditAction.PROMPT_GET : AuditAction.RESOURCE_READ;
    return this.recorder.recordAudit(
      auditEvent(action, caller, {
        resource: `${kind}:${id}`,
        result,
        details: { upstream, contextId: caller.context?.id ?? null, ...(reason ? { reason } : {}) },
      }),
    );
  }

  private recordReadFailure(caller: Caller, kind: 'prompt' | 'resource', id: string, upstream: string, reason: string): Promise<void> {
    return this.recordRead(caller, kind, id, upstream, 'failure', reason).catch((error: unknown) =>
      this.logger.error({ err: error, kind }, 'Audit record of a federated read failed'),
    );
  }

  /**
   * The connection a request of `caller` goes over: the catalogue connection of a gateway-auth
   * upstream, or the caller's own connection to a per-user upstream (its credential errors as
   * the JSON-RPC errors agents get, see featureRefusalOf).
   */
  private async leaseFor(caller: Caller, provider: UpstreamToolProvider, relay: ClientRequestRelay | undefined): Promise<FeatureLease> {
    if (provider.perUser) {
      const known = this.refusals.get(caller)?.get(provider.config.name);
      if (known) throw known;
      try {
        return await userFeatureLease(provider, listerOf(caller), relay);
      } catch (error) {
        throw error instanceof ToolError ? this.refusal(error) : error;
      }
    }
    const client = this.clientOf(provider);
    const tracked = provider.track(relay);
    let ended = false;
    return {
      client,
      params: tracked.params,
      headers: tracked.headers,
      end: async () => {
        if (!ended) tracked.leave();
        ended = true;
        return undefined;
      },
    };
  }

  private refusal(error: ToolError): FederationError {
    const refusal = featureRefusalOf(error);
    return new FederationError(refusal.code, refusal.message, refusal.data);
  }

  /**
   * `name` is no prompt the caller can list, but carries the prefix of a per-user upstream they
   * may use: when they have no usable credential of their own for it (so nothing of it could be
   * listed), that is the answer (the URL elicitation or UPSTREAM_CREDENTIAL_REQUIRED), audited.
   */
  private async requireOwnCredential(caller: Caller, name: string, relay: ClientRequestRelay | undefined): Promise<void> {
    const provider = this.registry
      .all()
      .find(
        (candidate) =>
          candidate.perUser &&
          candidate.config.idPrefix !== '' &&
          name.startsWith(candidate.config.idPrefix) &&
          this.mayUse(caller, candidate.config.permissions) &&
          inContext(caller, name),
      );
    if (!provider) return;
    let lease: FeatureLease;
    try {
      lease = await this.leaseFor(caller, provider, relay);
    } catch (error) {
      if (error instanceof FederationError) await this.recordReadFailure(caller, 'prompt', name, provider.config.name, error.message);
      throw error;
    }
    await lease.end();
  }

  /** The upstream's per-user budget (its `rateLimit`, per prompt or resource) and the context's. */
  private async consume(caller: Caller, provider: UpstreamToolProvider, kind: string, id: string): Promise<void> {
    const userId = caller.principal.userId;
    if (caller.context) await this.limiter.consumeContext(userId, caller.context);
    const limit = provider.config.rateLimit;
    const decision = await this.rates.hit(
      `${kind}:${id}:user:${userId}`,
      limit.requests,
      rateWindowMs(limit.window) ?? 60_000,
      this.clock.nowMs(),
    );
    if (!decision.allowed) {
      throw new AppException(
        ErrorCode.RATE_LIMIT_EXCEEDED,
        `Rate limit for ${id} exceeded: ${limit.requests} requests per ${limit.window}`,
        429,
        [],
        rateLimitHeaders(decision),
      );
    }
  }

  private provider(name: string): UpstreamToolProvider {
    const provider = this.registry.get(name);
    if (!provider) throw new FederationError(FederationErrorCode.SERVER_ERROR, `Upstream ${name} is not declared`);
    return provider;
  }

  private clientOf(provider: UpstreamToolProvider): Client {
    const client = provider.connectedClient();
    if (!client) {
      throw new FederationError(FederationErrorCode.SERVER_ERROR, `Upstream ${provider.config.name} is unavailable`, {
        error: 'UPSTREAM_UNAVAILABLE',
      });
    }
    return client;
  }

  /** An upstream's JSON-RPC error as it sent it; anything else as the gateway's own error. */
  private failure(provider: UpstreamToolProvider, error: unknown): FederationError {
    if (error instanceof FederationError) return error;
    if (error instanceof ProtocolError) return new FederationError(error.code, error.message, error.data, 'upstream');
    const reading = readFailure(error);
    const code = reading.kind === 'timeout' ? 'TIMEOUT' : reading.kind === 'connection' ? 'UPSTREAM_UNAVAILABLE' : 'UPSTREAM_ERROR';
    return new FederationError(
      FederationErrorCode.SERVER_ERROR,
      `Upstream ${provider.config.name}: ${reading.publicSummary ?? reading.summary}`,
      {
        error: code,
      },
    );
  }

  /** Each connected upstream's cached listing of one kind, concatenated (an upstream that fails is left out, logged). */
  private async gather<T>(read: (provider: UpstreamToolProvider, listing: Listing) => Promise<T[]>, lister?: Lister): Promise<T[]> {
    const parts = await Promise.all(
      this.registry.all().map(async (provider) => {
        if (provider.perUser) return lister ? this.gatherOwn(provider, lister, read) : [];
        const listing = this.listingOf(provider);
        if (!listing) return [];
        try {
          return await read(provider, listing);
        } catch (error) {
          this.forget(provider.config.name, listing.client);
          this.logger.warn({ err: error, upstream: provider.config.name }, 'Listing an upstream failed; its items are left out for now');
          return [];
        }
      }),
    );
    return parts.flat();
  }

  /**
   * A per-user upstream's items as `lister`'s own connection lists them (cached with that
   * connection). None while the user has no usable credential of their own, or may not use the
   * upstream: the gateway's credential never lists for a user.
   */
  private async gatherOwn<T>(
    provider: UpstreamToolProvider,
    lister: Lister,
    read: (provider: UpstreamToolProvider, listing: Listing) => Promise<T[]>,
  ): Promise<T[]> {
    if (!this.holds(lister.permissions, provider.config.permissions) || !provider.offeredCapabilities()) return [];
    const refused = this.refusals.get(lister.request);
    if (refused?.has(provider.config.name)) return [];
    let lease: FeatureLease;
    try {
      lease = await userFeatureLease(provider, lister, undefined);
    } catch (error) {
      if (!(error instanceof ToolError)) {
        this.logger.warn({ err: error, upstream: provider.config.name }, 'Opening a per-user listing failed');
      } else if (error.code !== CredentialErrorCode.UPSTREAM_CREDENTIAL_REQUIRED) {
        // A refusal (audited once) is remembered for this request only; a missing credential is looked up
        // again, as its answer depends on the agent (the URL elicitation).
        const known = refused ?? new Map<string, FederationError>();
        known.set(provider.config.name, this.refusal(error));
        this.refusals.set(lister.request, known);
      }
      return [];
    }
    let listing = this.userListings.get(lease.client);
    if (!listing) {
      listing = { client: lease.client };
      this.userListings.set(lease.client, listing);
      this.wire(provider.config.name, lease.client);
    }
    try {
      const items = await read(provider, listing);
      await lease.end();
      return items;
    } catch (error) {
      this.userListings.delete(lease.client);
      await lease.end(error);
      this.logger.warn(
        { err: error, upstream: provider.config.name, userId: lister.userId },
        "Listing a user's own upstream connection failed",
      );
      return [];
    }
  }

  private listingOf(provider: UpstreamToolProvider): Listing | null {
    const client = provider.connectedClient();
    if (!client) return null;
    let listing = this.listings.get(provider.config.name);
    if (!listing || listing.client !== client) {
      listing = { client };
      this.listings.set(provider.config.name, listing);
      this.wire(provider.config.name, client);
    }
    return listing;
  }

  private forget(upstream: string, client: Client, kind?: 'prompts' | 'resources'): void {
    const shared = this.listings.get(upstream);
    const listing = shared?.client === client ? shared : this.userListings.get(client);
    if (!listing) return;
    if (kind === 'prompts') listing.prompts = undefined;
    else if (kind === 'resources') listing.resources = listing.templates = undefined;
    else if (listing === shared) this.listings.delete(upstream);
    else this.userListings.delete(client);
  }

  /** The upstream's notifications: list changes drop the cache; all are passed to the listeners (log messages: see the constructor). */
  private wire(upstream: string, client: Client): void {
    if (this.wired.has(client)) return;
    this.wired.add(client);
    const emit = (notification: FederatedNotification) => this.emit(notification);
    client.setNotificationHandler('notifications/prompts/list_changed', () => {
      this.forget(upstream, client, 'prompts');
      emit({ method: 'notifications/prompts/list_changed', upstream });
    });
    client.setNotificationHandler('notifications/resources/list_changed', () => {
      this.forget(upstream, client, 'resources');
      emit({ method: 'notifications/resources/list_changed', upstream });
    });
    client.setNotificationHandler('notifications/resources/updated', (notification) => {
      emit({ method: 'notifications/resources/updated', upstream, uri: notification.params.uri });
    });
  }

  private emit(notification: FederatedNotification): void {
    for (const listener of this.listeners) {
      try {
        listener(notification);
      } catch (error) {
        this.logger.warn({ err: error }, 'A federated notification listener failed');
      }
    }
  }

  private async readPrompts(provider: UpstreamToolProvider, client: Client): Promise<FederatedPrompt[]> {
    if (!client.getServerCapabilities()?.prompts) return [];
    const { config } = provider;
    const { prompts } = await client.listPrompts(undefined, { timeout: config.timeouts.listMs, cacheMode: 'refresh' });
    const seen = new Set<string>();
    const out: FederatedPrompt[] = [];
    for (const prompt of prompts) {
      if (typeof prompt?.name !== 'string' || prompt.name === '' || seen.has(prompt.name)) continue;
      seen.add(prompt.name);
      const name = federatedPromptName(config.idPrefix, prompt.name);
      out.push({
        name,
        upstream: config.name,
        upstreamName: prompt.name,
        permissions: config.permissions,
        view: { ...prompt, name },
        pin: promptPinEntry(config.name, name, prompt),
      });
    }
    await this.pinAll(
      config.name,
      out.map((prompt) => prompt.pin),
    );
    return out;
  }

  private async readResources(provider: UpstreamToolProvider, client: Client): Promise<FederatedResource[]> {
    if (!client.getServerCapabilities()?.resources) return [];
    const { config } = provider;
    const { resources } = await client.listResources(undefined, { timeout: config.timeouts.listMs, cacheMode: 'refresh' });
    const out: FederatedResource[] = [];
    for (const resource of resources) {
      if (typeof resource?.uri !== 'string' || !this.acceptable(provider, resource.uri)) continue;
      const uri = federatedUri(config.name, config.idPrefix, resource.uri);
      out.push({ uri, upstream: config.name, upstreamUri: resource.uri, permissions: config.permissions, view: { ...resource, uri } });
    }
    return out;
  }

  private async readTemplates(provider: UpstreamToolProvider, client: Client): Promise<FederatedTemplate[]> {
    if (!client.getServerCapabilities()?.resources) return [];
    const { config } = provider;
    const { resourceTemplates } = await client.listResourceTemplates(undefined, { timeout: config.timeouts.listMs, cacheMode: 'refresh' });
    const out: FederatedTemplate[] = [];
    for (const template of resourceTemplates) {
      if (typeof template?.uriTemplate !== 'string' || !this.acceptable(provider, template.uriTemplate)) continue;
      const uriTemplate = federatedUri(config.name, config.idPrefix, template.uriTemplate);
      let matcher: UriTemplate;
      try {
        matcher = new UriTemplate(uriTemplate);
      } catch {
        this.logger.error({ upstream: config.name }, `Upstream resource template ignored: malformed ${template.uriTemplate}`);
        continue;
      }
      out.push({
        uriTemplate,
        upstream: config.name,
        permissions: config.permissions,
        view: { ...template, uriTemplate },
        matcher,
        pin: templatePinEntry(config.name, uriTemplate, template),
      });
    }
    await this.pinAll(
      config.name,
      out.map((template) => template.pin),
    );
    return out;
  }

  /** An empty-prefix upstream's URI in the gateway's own scheme would be ambiguous: not federated. */
  private acceptable(provider: UpstreamToolProvider, uri: string): boolean {
    if (provider.config.idPrefix !== '' || !isFederatedUri(uri)) return true;
    this.logger.error({ upstream: provider.config.name }, `Upstream resource ignored: ${uri} is in the gateway's own URI scheme`);
    return false;
  }
}

/** Whether a context (if any) has this prompt name or resource URI (template) among its members. */
function inContext(caller: Pick<ExecutionScope, 'context'>, id: string): boolean {
  const context = caller.context;
  if (!context) return true;
  return context.tools.includes(id);
}

function originalOf(template: FederatedTemplate): string {
  return parseFederatedUri(template.uriTemplate)?.uri ?? template.uriTemplate;
}

function subscriptionKey(upstream: string, uri: string): string {
  return `${upstream}\u0000${uri}`;
}

function byKey<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}
