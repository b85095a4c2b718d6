import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { CONTEXT_STATUSES, Context, ContextStatus } from '../context';

/** The contract's Context: exactly its fields (the owner stays inside). */
@ApiSchema({ name: 'Context' })
export class ContextDto {
  @ApiProperty({ example: 'ctx_8Jk2mQ0vXbYt1s4p' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'Empty when none was given' }) description: string;
  @ApiProperty({ enum: CONTEXT_STATUSES }) status: ContextStatus;
  @ApiProperty({ type: 'object', additionalProperties: true }) metadata: Record<string, unknown>;
  @ApiProperty({
    type: [String],
    description:
      'Ids of the catalogue tools available in the context (extension: and the federated prompts, resources and resource templates)',
  })
  tools: string[];
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Understood: defaultTimeoutMs (integer), rateLimit { requests, window }; other keys are kept as given',
  })
  settings: Record<string, unknown>;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(context: Context): ContextDto {
    const dto = new ContextDto();
    dto.id = context.id;
    dto.name = context.name;
    dto.description = context.description;
    dto.status = context.status;
    dto.metadata = context.metadata;
    dto.tools = [...context.tools];
    dto.settings = context.settings;
    dto.createdAt = context.createdAt.toISOString();
    dto.updatedAt = context.updatedAt.toISOString();
    return dto;
  }
}
