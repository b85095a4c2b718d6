import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';

/** POST /admin/tools/{id}/approve: the definition hash the administrator reviewed (the current offer's). */
@ApiSchema({ name: 'ToolDefinitionApprovalRequest' })
export class ApproveToolDefinitionDto {
  @ApiProperty({
    description: 'offeredHash from GET /admin/tools/{id}/approval: approval fails (409) if the upstream offers anything else by now',
    pattern: '^[0-9a-f]{64}$',
  })
  @IsString()
  @Matches(/^[0-9a-f]{64}$/, { message: 'definitionHash must be a 64-character lower-case hex SHA-256' })
  definitionHash: string;
}
