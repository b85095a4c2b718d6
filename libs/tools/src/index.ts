export type { ToolCallContext, ToolDefinition, ToolProvider } from './provider/tool-provider';
export { ToolError, abortedError } from './provider/tool-error';
export { isToolResult } from './provider/tool-result';
export { missingCapability, relayCapabilitiesOf, RELAYED_METHODS } from './provider/client-request-relay';
export type {
  ClientRequestRelay,
  InputRequired,
  RelayCapabilities,
  RelayedMethod,
  RelayedRequest,
  RelayOutcome,
} from './provider/client-request-relay';
export type { ToolResult } from './provider/tool-result';
export { FILESYSTEM_WRITE_PERMISSION } from './builtin/filesystem.tool';
export { TOOL_PROVIDERS } from './tool-providers.token';
export { ToolsModule } from './tools.module';
export type { CatalogTool } from './catalog/catalog-tool';
export { ToolCatalogService } from './catalog/tool-catalog.service';
export { TOOLS_COLUMNS } from './catalog/tool.repository';
export type { ExecuteToolRequest, ExecutionError, ExecutionMeta, ToolExecution } from './execution/tool-execution';
export { TOOL_EXECUTIONS_COLUMNS } from './execution/tool-execution.row';
export { ToolExecutionService } from './execution/tool-execution.service';
export { UpstreamsModule } from './upstream/upstreams.module';
export { UpstreamRegistry } from './upstream/upstream.registry';
export { UPSTREAM_TOOL_PINS_COLUMNS } from './upstream/upstream-pin.repository';
export { ToolsErrorCode } from './tool-error-codes';
export { UpstreamErrorCode } from './upstream/upstream-failure';
