import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AuthErrorCode, MfaErrorCode } from '@app/auth';
import { ContextsErrorCode } from '@app/contexts';
import { AppConfig, ErrorCode, ErrorResponseDto, PaginationDto, ScopeErrorCode } from '@app/core';
import { IdentityErrorCode } from '@app/identity';
import { FederationRestErrorCode, ToolsErrorCode, UpstreamErrorCode } from '@app/tools';

export const API_PREFIX = 'api/v1';

/** Codes the audit service raises inline (POST /audit-logs/checkpoints). */
const AUDIT_ERROR_CODES = ['AUDIT_CHAIN_BROKEN', 'AUDIT_CHAIN_EMPTY'];

/** Every code the `error` field of the Error body can carry: the core catalogue and each lib's own. */
export const ERROR_CODE_CATALOGUE: readonly string[] = [
  ...new Set([
    ...Object.values(ErrorCode),
    ...Object.values(AuthErrorCode),
    ...Object.values(MfaErrorCode),
    ...Object.values(ScopeErrorCode),
    // UNKNOWN_TOOL and TOOL_NOT_PERMITTED are `details[].code` values, not `error` codes.
    ContextsErrorCode.CONTEXT_ARCHIVED,
    ContextsErrorCode.TOOL_NOT_IN_CONTEXT,
    ...Object.values(ToolsErrorCode),
    ...Object.values(UpstreamErrorCode),
    ...Object.values(FederationRestErrorCode),
    ...AUDIT_ERROR_CODES,
    ...Object.values(IdentityErrorCode),
  ]),
].sort();

/** A trace id as W3C Trace Context writes it (32 lowercase hex digits), the form responses carry. */
const EXAMPLE_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** What an integrator sees per error status when the route says nothing more specific. */
const ERROR_EXAMPLES: Record<string, { error: string; message: string; details?: Array<Record<string, string>> }> = {
  '400': {
    error: ErrorCode.VALIDATION_ERROR,
    message: 'Invalid request parameters',
    details: [{ field: 'email', message: 'email must be an email', code: 'isEmail' }],
  },
  '401': { error: ErrorCode.UNAUTHORIZED, message: 'Authentication required' },
  '403': { error: ErrorCode.FORBIDDEN, message: 'Insufficient permissions' },
  '404': { error: ErrorCode.NOT_FOUND, message: 'Resource not found' },
  '405': { error: ErrorCode.METHOD_NOT_ALLOWED, message: 'Method not allowed' },
  '409': { error: ErrorCode.CONFLICT, message: 'The resource was changed by a concurrent request' },
  '413': { error: ErrorCode.PAYLOAD_TOO_LARGE, message: 'Request body is too large' },
  '415': { error: ErrorCode.UNSUPPORTED_MEDIA_TYPE, message: 'Content-Type must be application/json' },
  '429': { error: ErrorCode.RATE_LIMIT_EXCEEDED, message: 'Too many requests, retry after the Retry-After header' },
  '500': { error: ErrorCode.INTERNAL_ERROR, message: 'Internal server error' },
  '502': { error: FederationRestErrorCode.UPSTREAM_ERROR, message: 'The upstream answered an error' },
  '503': { error: ErrorCode.SERVICE_UNAVAILABLE, message: 'Service temporarily unavailable' },
};

/** Request bodies the API accepts as they stand (test/swagger-portal.e2e-spec.ts sends them). */
export const REGISTER_EXAMPLE = {
  email: 'ada.lovelace@example.com',
  password: 'AnalyticalEngine1843!',
  name: 'Ada Lovelace',
  organization: 'Example Corp',
};
export const LOGIN_EXAMPLE = { email: REGISTER_EXAMPLE.email, password: REGISTER_EXAMPLE.password };

const DESCRIPTION = `Secure MCP Server: a Model Context Protocol gateway with authentication, per-tool permissions, contexts and an audit trail.

## Getting started

1. **Sign in.** \`POST /auth/register\` creates an account (or sign in as the administrator configured with \`ADMIN_EMAIL\`),
   then \`POST /auth/login\` with \`{ "email", "password" }\` answers \`accessToken\` (a JWT, valid \`expiresIn\` seconds) and
   \`refreshToken\`. An account with a second factor answers \`401 MFA_REQUIRED\` first: repeat the login with \`mfaCode\`.
2. **Authorize.** Press **Authorize** and paste the \`accessToken\` (without \`Bearer \`); Swagger UI keeps it across reloads.
   An API key (\`POST /auth/api-keys\`) is sent the same way.
3. **Call a tool.** \`GET /tools\` lists the tools you may call; \`POST /tools/{id}/execute\` with \`{ "parameters": { … } }\` runs one.
4. **Connect an agent over MCP.** Point an MCP client (Streamable HTTP transport) at \`/api/v1/mcp\` with the header
   \`Authorization: Bearer <accessToken>\` (or an API key); it sees the same tools under the same permissions.

## MCP endpoints

Served beside the REST API (plain routes, not operations of this document). Both protocol eras share the URLs: 2026-07-28
(stateless, every request carries its \`_meta\` envelope and the \`MCP-Protocol-Version\`, \`Mcp-Method\`, \`Mcp-Name\` headers) and
2025-11-25 / 2025-06-18 / 2025-03-26 (\`initialize\` issues an \`Mcp-Session-Id\`).

| Method | Path | What |
| --- | --- | --- |
| POST | \`/api/v1/mcp\` | JSON-RPC messages (\`initialize\`, \`tools/list\`, \`tools/call\`, …); answers JSON or an SSE stream |
| GET | \`/api/v1/mcp\` | SSE stream of server-to-client messages (\`notifications/tools/list_changed\`) |
| DELETE | \`/api/v1/mcp\` | Ends the session named by \`Mcp-Session-Id\` |
| GET, POST, DELETE | \`/api/v1/contexts/{id}/mcp\` | The same, limited to the tools of one context |
| GET (WebSocket upgrade) | \`/api/v1/mcp/ws\` | MCP over WebSocket, subprotocol \`mcp\`; a browser authenticates with a single-use ticket from \`POST /mcp/tickets\` as \`?ticket=\` |
| GET (WebSocket upgrade) | \`/api/v1/contexts/{id}/mcp/ws\` | MCP over WebSocket for one context |
| GET | \`/.well-known/oauth-protected-resource\` and \`/.well-known/oauth-protected-resource/api/v1/mcp\` | RFC 9728 protected-resource metadata (public); a 401 from the MCP endpoints points to it in \`WWW-Authenticate\` |

## Errors

Every REST error answers the **Error** body: \`error\` is a stable code from the catalogue listed in the schema (codes are added,
never renamed), \`message\` is for people, \`details\` lists the fields at fault for \`VALIDATION_ERROR\`, \`requestId\` and \`traceId\`
(W3C trace id, 32 hex digits) find the request in logs and traces. \`429\` and lockouts carry \`Retry-After\`. MCP endpoints answer
JSON-RPC errors instead.`;

/** The Error schema lists the catalogue; its examples look like a real answer. */
function describeErrorSchema(document: OpenAPIObject): void {
  const schema = document.components?.schemas?.Error as { properties?: Record<string, Record<string, unknown>> } | undefined;
  const props = schema?.properties;
  if (!props) return;
  props.error = { ...props.error, enum: [...ERROR_CODE_CATALOGUE] };
  props.traceId = { ...props.traceId, pattern: '^[0-9a-f]{32}$' };
}

type MediaType = { schema?: { $ref?: string }; example?: unknown };
type Response = { description?: string; content?: Record<string, MediaType> };

/**
 * Each error response gets an example for its own status. A route whose description starts with a
 * catalogue code (`LAST_ADMIN: …`, `MFA_REQUIRED …`) shows that code.
 */
/** `LAST_ADMIN: the last active administrator cannot lose the role` -> `The last active administrator cannot lose the role`. */
function messageAfterCode(description: string): string {
  const text = description.replace(/^[A-Z][A-Z_]+:?\s*/, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function exampleErrorResponses(document: OpenAPIObject): void {
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as Array<{ responses?: Record<string, Response> }>) {
      for (const [status, response] of Object.entries(operation?.responses ?? {})) {
        const media = response?.content?.['application/json'];
        if (!media || media.schema?.$ref !== '#/components/schemas/Error') continue;
        const base = ERROR_EXAMPLES[status];
        if (!base) continue;
        const named = /^([A-Z][A-Z_]+)\b/.exec(response.description ?? '')?.[1];
        const specific = named && ERROR_CODE_CATALOGUE.includes(named) && named !== base.error;
        const { error, message, details = [] } = specific ? { error: named, message: messageAfterCode(response.description ?? '') } : base;
        media.example = {
          error,
          message,
          details,
          timestamp: '2026-01-15T09:30:00.000Z',
          requestId: 'req_Qx3vN8kZp2LmT5aR',
          traceId: EXAMPLE_TRACE_ID,
        };
      }
    }
  }
}

/**
 * Schema names as an integrator reads them: `LoginDto` becomes `Login` (unless that name is taken),
 * and every `$ref` follows. Names are documentation only: bodies and paths do not change.
 */
function dropDtoSuffixes(document: OpenAPIObject): void {
  const schemas = document.components?.schemas;
  if (!schemas) return;
  const renames = new Map<string, string>();
  for (const name of Object.keys(schemas)) {
    const short = name.replace(/Dto$/, '');
    if (short !== name && short.length > 0 && !(short in schemas)) renames.set(name, short);
  }
  for (const [from, to] of renames) {
    schemas[to] = schemas[from];
    delete schemas[from];
  }
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (typeof record.$ref === 'string') {
      const name = record.$ref.replace('#/components/schemas/', '');
      const to = renames.get(name);
      if (to) record.$ref = `#/components/schemas/${to}`;
    }
    Object.values(record).forEach(visit);
  };
  visit(document);
}

function exampleRequestBody(document: OpenAPIObject, path: string, example: object): void {
  const media = (document.paths[path]?.post?.requestBody as { content?: Record<string, MediaType> } | undefined)?.content?.[
    'application/json'
  ];
  if (media) media.example = example;
}

/**
 * The OpenAPI document is generated from the controllers' decorators and laid out like the
 * contract: paths without the prefix, the prefix as the server URL, bearer auth by default
 * and `security: []` on public routes.
 */
export function buildOpenApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Secure MCP Server API')
    .setDescription(DESCRIPTION)
    .setVersion(config.version)
    .setLicense('Apache 2.0', 'https://www.apache.org/licenses/LICENSE-2.0.html')
    .addServer(`/${API_PREFIX}`, 'This server')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'BearerAuth')
    .addSecurityRequirements('BearerAuth')
    .addTag('Authentication', 'User authentication and authorization')
    .addTag('Tools', 'MCP tool operations')
    .addTag('Prompts', "Upstream MCP servers' prompts, as MCP agents get them (extension)")
    .addTag('Resources', "Upstream MCP servers' resources and resource templates, as MCP agents get them (extension)")
    .addTag('Contexts', 'Context management')
    .addTag('Sessions', 'Session management')
    .addTag('Admin', 'Administrative operations')
    .addTag('Health', 'Health and monitoring endpoints');
  const document = SwaggerModule.createDocument(app, builder.build(), {
    ignoreGlobalPrefix: true,
    extraModels: [ErrorResponseDto, PaginationDto],
  });
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as Array<Record<string, unknown>>) {
      if (!operation || typeof operation !== 'object') continue;
      if ('x-public' in operation) {
        operation.security = [];
        delete operation['x-public'];
      } else if (Array.isArray(operation.security)) {
        // Several access decorators on one route each declare BearerAuth: list it once.
        operation.security = [...new Map(operation.security.map((s) => [JSON.stringify(s), s])).values()];
      }
    }
  }
  dropDtoSuffixes(document);
  describeErrorSchema(document);
  exampleErrorResponses(document);
  exampleRequestBody(document, '/auth/register', REGISTER_EXAMPLE);
  exampleRequestBody(document, '/auth/login', LOGIN_EXAMPLE);
  return document;
}

/** The document is built on the first request for it: scanning every controller slowed every start. */
export function setupSwagger(app: NestFastifyApplication, config: AppConfig): void {
  SwaggerModule.setup('api/docs', app, () => buildOpenApiDocument(app, config), {
    useGlobalPrefix: false,
    jsonDocumentUrl: 'api/docs-json',
    yamlDocumentUrl: 'api/docs-yaml',
    customSiteTitle: 'Secure MCP Server — API portal',
    // The stock Swagger top bar (logo and URL box) says nothing about this API: the title block does.
    customCss: '.swagger-ui .topbar { display: none } .swagger-ui .info .title { font-size: 32px }',
    swaggerOptions: { persistAuthorization: true, displayRequestDuration: true, tryItOutEnabled: false },
  });
}
