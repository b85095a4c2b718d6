import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiTags } from '@nestjs/swagger';
import type { GetPromptResult, Prompt } from '@modelcontextprotocol/client';
import { Actor, AppException, CurrentActor, CurrentPrincipal, ErrorResponseDto, ExecutionScopeResolver, Principal } from '@app/core';
import { UpstreamFeatureService } from '../upstream-features.service';
import {
  FederatedScopeQueryDto,
  GetPromptResultDto,
  ListFederatedQueryDto,
  PromptDto,
  PromptListDto,
  RenderPromptDto,
} from './dto/federated-features.dto';
import {
  ApiFederatedReadResponses,
  asRest,
  FederatedListRoute,
  FederatedRoute,
  listPage,
  promptArgumentProblems,
  restCaller,
  withoutHopMeta,
} from './federated-rest';

/**
 * REST extension: the prompts upstream MCP servers offer, as MCP agents get them (the same
 * UpstreamFeatureService calls as prompts/list and prompts/get): visible to holders of
 * tools:execute and every permission the upstream is declared with, only a context's members in
 * a context, held while a changed definition awaits approval, rendering rate limited and audited
 * (prompt.get) like the MCP request.
 */
@ApiTags('Prompts')
@Controller('prompts')
export class FederatedPromptsController {
  constructor(
    private readonly features: UpstreamFeatureService,
    private readonly scopes: ExecutionScopeResolver,
  ) {}

  @Get()
  @FederatedListRoute(
    'List federated prompts (extension)',
    "The upstreams' prompts you may use (MCP prompts/list), sorted by name. With contextId, or with an API key bound to a " +
      'context: only its member prompts.',
    PromptListDto,
  )
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListFederatedQueryDto,
    @CurrentActor() client: Actor,
  ): Promise<{ prompts: Prompt[]; pagination: PromptListDto['pagination'] }> {
    const { items, pagination } = await listPage(this.scopes, principal, client, query, (caller) => this.features.listPrompts(caller));
    return { prompts: items.map((prompt) => prompt.view), pagination };
  }

  @Get(':name')
  @FederatedRoute(
    'Get a federated prompt definition (extension)',
    'As MCP prompts/list shows it: name, title, description, arguments. URL-encode the name.',
    { description: 'The prompt', type: PromptDto },
  )
  @ApiNotFoundResponse({ description: 'No prompt of this name that you may use (here)', type: ErrorResponseDto })
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('name') name: string,
    @Query() query: FederatedScopeQueryDto,
    @CurrentActor() client: Actor,
  ): Promise<Prompt> {
    const caller = await restCaller(this.scopes, principal, client, query.contextId);
    const prompt = (await this.features.listPrompts(caller)).find((candidate) => candidate.name === name);
    if (!prompt) throw AppException.notFound(`Unknown prompt: ${name}`);
    return prompt.view;
  }

  @Post(':name/render')
  @HttpCode(200)
  @FederatedRoute(
    'Render a federated prompt with arguments (extension)',
    'MCP prompts/get: the upstream renders the prompt; the body is its GetPromptResult (messages with their content ' +
      "blocks, as the upstream sent them). Audited as prompt.get, rate limited per user by the upstream's rateLimit (and " +
      "the context's). Arguments are checked against the prompt's declared ones first. A prompt whose changed definition " +
      'awaits approval answers 403 DEFINITION_NOT_APPROVED; one whose upstream asks the caller for input (sampling, ' +
      'elicitation) answers 409 INPUT_REQUIRED: only an MCP agent can give it.',
    { description: 'The rendered prompt', type: GetPromptResultDto },
  )
  @ApiBadRequestResponse({
    description: 'Validation error: one detail per offending argument (arguments.<name>), or the upstream refused them',
    type: ErrorResponseDto,
  })
  @ApiNotFoundResponse({ description: 'No prompt of this name that you may use (here)', type: ErrorResponseDto })
  @ApiFederatedReadResponses()
  async render(
    @CurrentPrincipal() principal: Principal,
    @Param('name') name: string,
    @Query() query: FederatedScopeQueryDto,
    @Body() body: RenderPromptDto,
    @CurrentActor() client: Actor,
  ): Promise<GetPromptResult> {
    const caller = await restCaller(this.scopes, principal, client, query.contextId);
    // A prompt held for approval is not listed: getPrompt itself answers for it (DEFINITION_NOT_APPROVED).
    const listed = (await this.features.listPrompts(caller)).find((candidate) => candidate.name === name);
    if (listed) {
      const problems = promptArgumentProblems(listed.view, body.arguments);
      if (problems.length > 0) throw AppException.validation(problems);
    }
    return withoutHopMeta(await asRest('arguments', () => this.features.getPrompt(caller, name, body.arguments)));
  }
}
