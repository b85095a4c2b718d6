import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length } from 'class-validator';
import { PaginationQueryDto } from '@app/core';
import { CONTEXT_STATUSES, ContextStatus } from '../context';

export const CONTEXT_SORTS = ['created', 'updated', 'name'] as const;
export type ContextSort = (typeof CONTEXT_SORTS)[number];

export class ListContextsQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ enum: CONTEXT_STATUSES })
  @IsOptional()
  @IsIn(CONTEXT_STATUSES)
  status?: ContextStatus;

  @ApiPropertyOptional({ enum: CONTEXT_SORTS, default: 'created' })
  @IsOptional()
  @IsIn(CONTEXT_SORTS)
  sort?: ContextSort;

  @ApiPropertyOptional({ enum: ['asc', 'desc'], description: 'Default: asc for name, desc (newest first) otherwise' })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order?: 'asc' | 'desc';

  @ApiPropertyOptional({
    description: "Extension: one user's contexts. Administrators may name anyone; other callers only themselves (else 403).",
  })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  userId?: string;
}
