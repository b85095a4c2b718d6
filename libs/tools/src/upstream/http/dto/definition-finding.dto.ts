import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import type { FindingKind } from '../../definition-screen';

/** One thing the definition screen found in an upstream tool definition. */
@ApiSchema({ name: 'ToolDefinitionFinding' })
export class DefinitionFindingDto {
  @ApiProperty({ enum: ['hidden-characters', 'html-comment', 'instruction-markup', 'instruction-phrase', 'sensitive-path'] })
  kind: FindingKind;
  @ApiProperty({ example: 'inputSchema.properties.path.description', description: 'Dotted path into the definition' }) field: string;
  @ApiProperty({ description: 'The text found (hidden characters spelled as \\uXXXX), shortened' }) excerpt: string;
}
