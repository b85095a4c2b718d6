import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length } from 'class-validator';
import { PaginationQueryDto } from '@app/core';

/** GET /sessions: `page`, `limit`, and the `status` and `userId` filters (extensions). */
export class ListSessionsQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ enum: ['active', 'terminated'], description: 'Extension: only sessions in this state' })
  @IsOptional()
  @IsIn(['active', 'terminated'])
  status?: 'active' | 'terminated';

  @ApiPropertyOptional({
    description: "Extension: one user's sessions. Administrators may name anyone; other callers only themselves (else 403).",
  })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  userId?: string;
}
