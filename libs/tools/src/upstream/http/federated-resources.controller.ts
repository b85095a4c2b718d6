import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiTags } from '@nestjs/swagger';
import type { ReadResourceResult, Resource, ResourceTemplateType } from '@modelcontextprotocol/client';
import { Actor, CurrentActor, CurrentPrincipal, ErrorResponseDto, ExecutionScopeResolver, Principal } from '@app/core';
import { UpstreamFeatureService } from '../upstream-features.service';
import {
  ListFederatedQueryDto,
  ReadResourceQueryDto,
  ReadResourceResultDto,
  ResourceListDto,
  ResourceTemplateListDto,
} from './dto/federated-features.dto';
import {
  ApiFederatedReadResponses,
  asRest,
  FederatedListRoute,
  FederatedRoute,
  listPage,
  restCaller,
  withoutHopMeta,
} from './federated-rest';

/**
 * REST extension: the resources and resource templates upstream MCP servers offer, as MCP agents
 * get them (the same UpstreamFeatureService calls as resources/list, resources/templates/list
 * and resources/read): the same permissions, context membership, pinning of templates, rate
 * limit and audit (resource.read).
 */
@ApiTags('Resources')
@Controller('resources')
export class FederatedResourcesController {
  constructor(
    private readonly features: UpstreamFeatureService,
    private readonly scopes: ExecutionScopeResolver,
  ) {}

  @Get()
  @FederatedListRoute(
    'List federated resources (extension)',
    "The upstreams' resources you may read (MCP resources/list), sorted by URI. With contextId, or with an API key bound " +
      'to a context: only its member resources.',
    ResourceListDto,
  )
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListFederatedQueryDto,
    @CurrentActor() client: Actor,
  ): Promise<{ resources: Resource[]; pagination: ResourceListDto['pagination'] }> {
    const { items, pagination } = await listPage(this.scopes, principal, client, query, (caller) => this.features.listResources(caller));
    return { resources: items.map((resource) => resource.view), pagination };
  }

  @Get('templates')
  @FederatedListRoute(
    'List federated resource templates (extension)',
    'MCP resources/templates/list, sorted by URI template; a template whose changed definition awaits approval is not ' +
      'listed. With contextId, or with an API key bound to a context: only its member templates.',
    ResourceTemplateListDto,
  )
  async templates(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListFederatedQueryDto,
    @CurrentActor() client: Actor,
  ): Promise<{ resourceTemplates: ResourceTemplateType[]; pagination: ResourceTemplateListDto['pagination'] }> {
    const { items, pagination } = await listPage(this.scopes, principal, client, query, (caller) => this.features.listTemplates(caller));
    return { resourceTemplates: items.map((template) => template.view), pagination };
  }

  @Get('read')
  @FederatedRoute(
    'Read a federated resource (extension)',
    'MCP resources/read of `uri` (URL-encoded): a listed resource or an expansion of a listed template. The body is the ' +
      "upstream's ReadResourceResult with the URIs you know. Audited as resource.read, rate limited per user by the " +
      "upstream's rateLimit (and the context's). An upstream asking the caller for input (sampling, elicitation) answers " +
      '409 INPUT_REQUIRED: only an MCP agent can give it.',
    { description: 'The contents', type: ReadResourceResultDto },
  )
  @ApiBadRequestResponse({
    description: 'Validation error (uri missing or too long), or the upstream refused the URI',
    type: ErrorResponseDto,
  })
  @ApiNotFoundResponse({ description: 'No resource you may read (here) has this URI', type: ErrorResponseDto })
  @ApiFederatedReadResponses()
  async read(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ReadResourceQueryDto,
    @CurrentActor() client: Actor,
  ): Promise<ReadResourceResult> {
    const caller = await restCaller(this.scopes, principal, client, query.contextId);
    return withoutHopMeta(await asRest('uri', () => this.features.readResource(caller, query.uri)));
  }
}
