import { applyDecorators, Type } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import type { Prompt } from '@modelcontextprotocol/client';
import { AppException, ErrorResponseDto, pageOffset, paginationOf, Permission, RequirePermissions } from '@app/core';
import type { Actor, ErrorDetail, ExecutionScope, ExecutionScopeResolver, PaginationDto, Principal } from '@app/core';
import { inputRequiredOf } from '../upstream-request-relay';
import { FederationRestErrorCode, restErrorOf } from './federation-rest-errors';

/** Who asks, as UpstreamFeatureService takes it. */
export type RestCaller = ExecutionScope & Pick<Actor, 'ipAddress' | 'userAgent'>;

/** The caller as the REST edge resolves it (the context asked for, or the key's own). */
export async function restCaller(
  scopes: ExecutionScopeResolver,
  principal: Principal,
  client: Actor,
  contextId: string | undefined,
): Promise<RestCaller> {
  const scope = await scopes.resolve(principal, contextId);
  return { ...scope, ipAddress: client.ipAddress, userAgent: client.userAgent };
}

/** One page of a listing, for this caller. */
export async function listPage<T>(
  scopes: ExecutionScopeResolver,
  principal: Principal,
  client: Actor,
  query: { page: number; limit: number; contextId?: string },
  list: (caller: RestCaller) => Promise<readonly T[]>,
): Promise<{ items: T[]; pagination: PaginationDto }> {
  return pageOf(await list(await restCaller(scopes, principal, client, query.contextId)), query);
}

/**
 * A route of the extension: it requires tools:execute (what MCP asks of every federated item; the
 * upstream's own permissions filter further) and says what it does.
 */
export const FederatedRoute = (summary: string, description: string, ok: { description: string; type: Type<unknown> }): MethodDecorator =>
  applyDecorators(RequirePermissions(Permission.TOOLS_EXECUTE), ApiOperation({ summary, description }), ApiOkResponse(ok));

/** A listing route: a FederatedRoute that pages (400 for a bad page or limit) and may name a context (404 when unknown). */
export const FederatedListRoute = (summary: string, description: string, type: Type<unknown>): MethodDecorator =>
  applyDecorators(
    FederatedRoute(summary, description, { description: 'One page of the listing', type }),
    ApiBadRequestResponse({ description: 'Validation error (e.g. limit above 100)', type: ErrorResponseDto }),
    ApiNotFoundResponse({ description: 'No such context', type: ErrorResponseDto }),
  );

/** One page of a listing the service sorted (the REST `page`/`limit`, like GET /tools). */
export function pageOf<T>(items: readonly T[], query: { page: number; limit: number }): { items: T[]; pagination: PaginationDto } {
  const offset = pageOffset(query);
  return { items: items.slice(offset, offset + query.limit), pagination: paginationOf(query, items.length) };
}

/**
 * Runs a service call; its FederationErrors leave as the contract's Error body (see restErrorOf).
 * An upstream's InputRequiredResult (it asks the caller for sampling, elicitation or roots, on
 * 2026-07-28) cannot be answered over REST: 409 INPUT_REQUIRED, pointing to MCP.
 */
export async function asRest<T>(field: 'arguments' | 'uri', work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    throw restErrorOf(error, field);
  }
  if (inputRequiredOf(result)) {
    throw new AppException(
      FederationRestErrorCode.INPUT_REQUIRED,
      'The upstream asks for input (sampling, elicitation or roots) that only an MCP agent can give: use the MCP endpoint',
      409,
    );
  }
  return result;
}

/** The key a 2026-07-28 server adds to each result's _meta naming itself: the upstream's hop, which MCP agents never see either. */
const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';

/** A result as an MCP agent gets it: the upstream's own serverInfo (its hop's identity) taken out of `_meta`. */
export function withoutHopMeta<T extends { _meta?: Record<string, unknown> }>(result: T): T {
  if (!result._meta || !(SERVER_INFO_META in result._meta)) return result;
  const { [SERVER_INFO_META]: _hop, ...rest } = result._meta;
  const { _meta: _dropped, ...body } = result;
  return (Object.keys(rest).length > 0 ? { ...body, _meta: rest } : body) as T;
}

/**
 * What is wrong with `args` for this prompt, per its declared arguments: each value a string,
 * every required argument given, none it does not declare. REST answers these with 400 before
 * asking the upstream (an MCP agent gets the upstream's own error for the same mistakes).
 */
export function promptArgumentProblems(prompt: Pick<Prompt, 'arguments'>, args: Record<string, unknown> | undefined): ErrorDetail[] {
  const declared = prompt.arguments ?? [];
  const given = args ?? {};
  const problems: ErrorDetail[] = [];
  for (const [name, value] of Object.entries(given)) {
    const field = `arguments.${name}`;
    if (!declared.some((argument) => argument.name === name)) {
      problems.push({ field, message: `${field} is not an argument of this prompt`, code: 'unknownArgument' });
    } else if (typeof value !== 'string') {
      problems.push({ field, message: `${field} must be a string`, code: 'isString' });
    }
  }
  for (const argument of declared) {
    if (argument.required && !Object.hasOwn(given, argument.name)) {
      problems.push({ field: `arguments.${argument.name}`, message: `arguments.${argument.name} is required`, code: 'isDefined' });
    }
  }
  return problems;
}

const integer = { schema: { type: 'integer' as const } };

/** The answers a federated read (prompts/get, resources/read) adds to a route's: its rate limit and the upstream's failures. */
export const ApiFederatedReadResponses = (): MethodDecorator =>
  applyDecorators(
    ApiTooManyRequestsResponse({
      description: "Rate limit exceeded (the upstream's per-user rateLimit, or the context's)",
      type: ErrorResponseDto,
      headers: { 'X-RateLimit-Limit': integer, 'X-RateLimit-Remaining': integer, 'X-RateLimit-Reset': integer, 'Retry-After': integer },
    }),
    ApiConflictResponse({ description: 'INPUT_REQUIRED: the upstream asks for input only an MCP agent can give', type: ErrorResponseDto }),
    ApiBadGatewayResponse({
      description: 'UPSTREAM_ERROR: the upstream answered an error (its code and words in details)',
      type: ErrorResponseDto,
    }),
    ApiServiceUnavailableResponse({ description: 'UPSTREAM_UNAVAILABLE: the upstream is not connected', type: ErrorResponseDto }),
  );
