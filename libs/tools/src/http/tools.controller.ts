import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  Actor,
  AppException,
  correlate,
  CurrentActor,
  CurrentPrincipal,
  ErrorResponseDto,
  ExecutionScopeResolver,
  Permission,
  Principal,
  RequirePermissions,
} from '@app/core';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import { ToolExecutionService } from '../execution/tool-execution.service';
import { rateLimitHeaders } from '../rate-limit/tool-rate-limiter';
import { ExecuteToolDto } from './dto/execute-tool.dto';
import { ListToolsQueryDto } from './dto/list-tools-query.dto';
import { ToolExecutionDto } from './dto/tool-execution.dto';
import { ToolListDto } from './dto/tool-list.dto';
import { ToolDto } from './dto/tool.dto';
import { ToolListCache } from './tool-list.cache';

const integer = { schema: { type: 'integer' as const } };

@ApiTags('Tools')
@Controller('tools')
export class ToolsController {
  constructor(
    private readonly catalog: ToolCatalogService,
    private readonly executions: ToolExecutionService,
    private readonly listings: ToolListCache,
    private readonly scopes: ExecutionScopeResolver,
  ) {}

  @Get()
  @RequirePermissions(Permission.TOOLS_READ)
  @ApiOperation({ summary: 'List available tools' })
  @ApiOkResponse({ description: 'Tools list', type: ToolListDto })
  @ApiBadRequestResponse({ description: 'Validation error (e.g. limit above 100)', type: ErrorResponseDto })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListToolsQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    // A ToolListDto's JSON bytes, serialised once per catalogue revision (see ToolListCache); a key bound to a
    // context lists that context's tools only, as its MCP tools/list does.
    reply.type('application/json; charset=utf-8');
    if (principal.contextId === undefined) return this.listings.json(query);
    const { context } = await this.scopes.resolve(principal);
    return this.listings.json(query, context?.tools);
  }

  // Declared before ':id' for readability; the router prefers the static segment either way.
  @Get('executions/:executionId')
  @RequirePermissions(Permission.TOOLS_EXECUTE)
  @ApiOperation({
    summary: 'Get an execution (extension)',
    description:
      'Your own executions (a context-bound API key: those run in its context); administrators holding admin:executions:read any.',
  })
  @ApiOkResponse({ description: 'The execution', type: ToolExecutionDto })
  @ApiNotFoundResponse({ description: 'No such execution, or not yours', type: ErrorResponseDto })
  async execution(@CurrentPrincipal() principal: Principal, @Param('executionId') executionId: string): Promise<ToolExecutionDto> {
    return ToolExecutionDto.from(await this.executions.find(principal, executionId));
  }

  @Get(':id')
  @RequirePermissions(Permission.TOOLS_READ)
  @ApiOperation({ summary: 'Get tool details' })
  @ApiOkResponse({ description: 'Tool details', type: ToolDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  async get(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<ToolDto> {
    const tool = this.catalog.find(id);
    if (!tool || !tool.available) throw AppException.notFound('Tool not found');
    // A key bound to a context knows only that context's tools (MCP: "Unknown tool").
    if (principal.contextId !== undefined) {
      const { context } = await this.scopes.resolve(principal);
      if (context && !context.tools.includes(tool.id)) throw AppException.notFound('Tool not found');
    }
    return ToolDto.from(tool);
  }

  @Post(':id/execute')
  @HttpCode(200)
  @RequirePermissions(Permission.TOOLS_EXECUTE)
  @ApiOperation({
    summary: 'Execute tool',
    description:
      'A call that runs and fails answers 200 with status "failed" and an error. With options.async the answer is ' +
      'immediate, status "pending"; fetch the outcome from GET /tools/executions/{executionId}. A repeated ' +
      'context.requestId returns the first execution instead of running again.',
  })
  @ApiOkResponse({ description: 'Execution result', type: ToolExecutionDto })
  @ApiBadRequestResponse({ description: 'Validation error: one detail per offending parameter', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'IDEMPOTENCY_KEY_REUSED: the requestId belongs to a different call', type: ErrorResponseDto })
  @ApiTooManyRequestsResponse({
    description: "Rate limit exceeded; or QUEUE_FULL: too many of the caller's async executions wait to start (Retry-After only)",
    type: ErrorResponseDto,
    headers: { 'X-RateLimit-Limit': integer, 'X-RateLimit-Remaining': integer, 'X-RateLimit-Reset': integer, 'Retry-After': integer },
  })
  async execute(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Body() body: ExecuteToolDto,
    @CurrentActor() client: Actor,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ToolExecutionDto> {
    // The REST edge: the scope (the context asked for, or the key's own) is resolved here, once.
    const scope = await this.scopes.resolve(principal, body.context?.contextId);
    // Every line the call logs carries the request's id, trace, user and session.
    const outcome = await this.executions.execute({ ...scope, correlation: correlate(reply.request, principal) }, id, body, client);
    // The tool's own budget, in place of the general per-user one the global limiter wrote.
    if (outcome.rateLimit) reply.headers(rateLimitHeaders(outcome.rateLimit));
    return ToolExecutionDto.from(outcome.execution);
  }
}
