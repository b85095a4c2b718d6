import { ApiProperty, ApiPropertyOptional, ApiSchema, IntersectionType } from '@nestjs/swagger';
import { IsObject, IsOptional, IsString, Length } from 'class-validator';
import { PaginationDto, PaginationQueryDto } from '@app/core';

/**
 * The REST extension's view of federated prompts and resources. Items and results are the MCP
 * objects exactly as an MCP agent gets them (prompts/list, resources/read, ...): these classes
 * only document them for Swagger (the MCP schema allows more fields, e.g. `icons`, `_meta`,
 * `annotations`, which are passed through as the upstream sent them).
 */

const MCP_OBJECT = { type: 'object', additionalProperties: true } as const;

/** `contextId`: the context to work in (yours, or any for admins); a key bound to a context works in it without asking. */
export class FederatedScopeQueryDto {
  @ApiPropertyOptional({
    description:
      'Work in this context: only its member prompts, resources and templates, and its rate limit (an API key bound to a context is always in its own)',
  })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  contextId?: string;
}

/** `page`, `limit` and `contextId`. */
export class ListFederatedQueryDto extends IntersectionType(PaginationQueryDto, FederatedScopeQueryDto) {}

@ApiSchema({ name: 'McpPromptArgument' })
export class PromptArgumentDto {
  @ApiProperty({ example: 'city' }) name: string;
  @ApiPropertyOptional() title?: string;
  @ApiPropertyOptional() description?: string;
  @ApiPropertyOptional() required?: boolean;
}

@ApiSchema({ name: 'McpPrompt', description: 'An MCP Prompt as an MCP agent lists it (extension)' })
export class PromptDto {
  @ApiProperty({ example: 'everything.args-prompt', description: "The federated name: the upstream's idPrefix + its prompt name" })
  name: string;
  @ApiPropertyOptional() title?: string;
  @ApiPropertyOptional() description?: string;
  @ApiPropertyOptional({ type: [PromptArgumentDto] }) arguments?: PromptArgumentDto[];
  @ApiPropertyOptional({ type: 'array', items: MCP_OBJECT }) icons?: Record<string, unknown>[];
  @ApiPropertyOptional({ ...MCP_OBJECT }) _meta?: Record<string, unknown>;
}

@ApiSchema({ name: 'McpPromptList' })
export class PromptListDto {
  @ApiProperty({ type: [PromptDto] }) prompts: PromptDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

@ApiSchema({ name: 'McpPromptRenderRequest' })
export class RenderPromptDto {
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { city: 'Bergen' },
    description: "The prompt's arguments (strings): every required one, no others",
  })
  @IsOptional()
  @IsObject()
  arguments?: Record<string, string>;
}

@ApiSchema({ name: 'McpPromptMessage' })
export class PromptMessageDto {
  @ApiProperty({ enum: ['user', 'assistant'] }) role: string;
  @ApiProperty({ ...MCP_OBJECT, description: 'A content block: text, image, audio, resource_link or resource' })
  content: Record<string, unknown>;
}

@ApiSchema({ name: 'McpGetPromptResult', description: 'The MCP GetPromptResult, as the upstream answered it (extension)' })
export class GetPromptResultDto {
  @ApiPropertyOptional() description?: string;
  @ApiProperty({ type: [PromptMessageDto] }) messages: PromptMessageDto[];
  @ApiPropertyOptional({ ...MCP_OBJECT }) _meta?: Record<string, unknown>;
}

/** What a resource and a resource template have in common (MCP's BaseMetadata, mimeType, annotations, icons, _meta). */
abstract class ResourceDescriptionDto {
  @ApiProperty() name: string;
  @ApiPropertyOptional() title?: string;
  @ApiPropertyOptional() description?: string;
  @ApiPropertyOptional() mimeType?: string;
  @ApiPropertyOptional({ ...MCP_OBJECT }) annotations?: Record<string, unknown>;
  @ApiPropertyOptional({ type: 'array', items: MCP_OBJECT }) icons?: Record<string, unknown>[];
  @ApiPropertyOptional({ ...MCP_OBJECT }) _meta?: Record<string, unknown>;
}

@ApiSchema({ name: 'McpResource', description: 'An MCP Resource as an MCP agent lists it (extension)' })
export class ResourceDto extends ResourceDescriptionDto {
  @ApiProperty({
    example: 'mcp-upstream://everything/demo://resource/static/document/architecture.md',
    description: "The federated URI: the upstream's own (empty idPrefix) or mcp-upstream://<upstream>/<its URI>",
  })
  uri: string;
  @ApiPropertyOptional({ type: 'integer' }) size?: number;
}

@ApiSchema({ name: 'McpResourceList' })
export class ResourceListDto {
  @ApiProperty({ type: [ResourceDto] }) resources: ResourceDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

@ApiSchema({ name: 'McpResourceTemplate', description: 'An MCP ResourceTemplate as an MCP agent lists it (extension)' })
export class ResourceTemplateDto extends ResourceDescriptionDto {
  @ApiProperty({ example: 'mcp-upstream://everything/demo://resource/dynamic/text/{resourceId}', description: 'RFC 6570 URI template' })
  uriTemplate: string;
}

@ApiSchema({ name: 'McpResourceTemplateList' })
export class ResourceTemplateListDto {
  @ApiProperty({ type: [ResourceTemplateDto] }) resourceTemplates: ResourceTemplateDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

export class ReadResourceQueryDto extends FederatedScopeQueryDto {
  @ApiProperty({
    description: 'The URI to read: a listed resource, or one a listed template expands to (URL-encode it)',
    example: 'mcp-upstream://everything/demo://resource/dynamic/text/3',
  })
  @IsString()
  @Length(1, 8192)
  uri: string;
}

@ApiSchema({ name: 'McpResourceContents' })
export class ResourceContentsDto {
  @ApiProperty({ description: 'The URI as the agent knows it (rewritten like the listing)' }) uri: string;
  @ApiPropertyOptional() mimeType?: string;
  @ApiPropertyOptional({ description: 'Text contents' }) text?: string;
  @ApiPropertyOptional({ description: 'Binary contents, base64' }) blob?: string;
  @ApiPropertyOptional({ ...MCP_OBJECT }) _meta?: Record<string, unknown>;
}

@ApiSchema({ name: 'McpReadResourceResult', description: 'The MCP ReadResourceResult (extension)' })
export class ReadResourceResultDto {
  @ApiProperty({ type: [ResourceContentsDto] }) contents: ResourceContentsDto[];
  @ApiPropertyOptional({ ...MCP_OBJECT }) _meta?: Record<string, unknown>;
}
