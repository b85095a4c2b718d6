import { ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { CONTEXT_STATUSES, ContextStatus } from '../context';
import { CreateContextDto } from './create-context.dto';
import { OptionalNotNull } from './optional-not-null.decorator';

/**
 * PUT /contexts/{id}: each field given replaces the stored one; absent fields stay. `status`
 * (an extension) archives the context or makes it active again. `skipNullProperties: false`:
 * optional, but null is refused rather than taken for "unchanged".
 */
export class UpdateContextDto extends PartialType(CreateContextDto, { skipNullProperties: false }) {
  @ApiPropertyOptional({ enum: CONTEXT_STATUSES, description: 'Extension: archived contexts cannot run tools' })
  @OptionalNotNull()
  @IsIn(CONTEXT_STATUSES)
  status?: ContextStatus;
}
