/**
 * Multi-provider token for tool sources. Any module may declare its own
 * `{ provide: TOOL_PROVIDERS, useExisting: SomeToolProvider }` (or `useFactory` returning an
 * array); ToolProviderRegistry collects every such declaration across the application, so a new
 * source (upstream MCP servers, a test-only provider) is added by composing a module, not by
 * editing a switch.
 */
export const TOOL_PROVIDERS = Symbol('TOOL_PROVIDERS');
