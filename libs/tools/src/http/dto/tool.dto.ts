import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { TOOL_CATEGORIES, ToolCategory } from '../../provider/tool-provider';
import type { CatalogTool } from '../../catalog/catalog-tool';

@ApiSchema({ name: 'ToolSchemas' })
export class ToolSchemasDto {
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'JSON Schema of `parameters`' })
  input: Record<string, unknown>;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'JSON Schema of `result`' })
  output: Record<string, unknown>;
}

@ApiSchema({ name: 'ToolRateLimit' })
export class ToolRateLimitDto {
  @ApiProperty({ type: 'integer', example: 60 }) requests: number;
  @ApiProperty({ example: '1m', description: 'Window: <n>s, <n>m, <n>h or <n>d' }) window: string;
}

/** The contract's Tool: exactly its fields (provider, annotations and overrides stay inside). */
@ApiSchema({ name: 'Tool' })
export class ToolDto {
  @ApiProperty({ example: 'tool_filesystem' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty() description: string;
  @ApiProperty() version: string;
  @ApiProperty({ enum: TOOL_CATEGORIES }) category: ToolCategory;
  @ApiProperty() enabled: boolean;
  @ApiProperty({ type: ToolSchemasDto }) schema: ToolSchemasDto;
  @ApiProperty({ type: [String], description: 'Permissions a caller must hold' }) permissions: string[];
  @ApiProperty({ type: ToolRateLimitDto, description: 'Per-user budget' }) rateLimit: ToolRateLimitDto;

  static from(tool: CatalogTool): ToolDto {
    const dto = new ToolDto();
    dto.id = tool.id;
    dto.name = tool.name;
    dto.description = tool.description;
    dto.version = tool.version;
    dto.category = tool.category;
    dto.enabled = tool.enabled;
    dto.schema = { input: tool.inputSchema, output: tool.outputSchema };
    dto.permissions = [...tool.permissions];
    dto.rateLimit = { ...tool.rateLimit };
    return dto;
  }
}
