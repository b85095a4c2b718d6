import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { PaginationQueryDto } from '@app/core';
import { AUDIT_SEVERITIES, AuditSeverity } from './audit-entry';

/** RFC 3339 date-time: a date, a time and an explicit offset, so the instant is unambiguous. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/i;
const DATE_TIME_MESSAGE = '$property must be an ISO 8601 date-time with an offset, e.g. 2025-01-31T23:59:59Z';

/** `GET /admin/audit-logs` filters. */
export class AuditLogQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ type: 'string', format: 'date-time', description: 'Only records at or after this instant' })
  @IsOptional()
  @Matches(DATE_TIME, { message: DATE_TIME_MESSAGE })
  startDate?: string;

  @ApiPropertyOptional({ type: 'string', format: 'date-time', description: 'Only records at or before this instant' })
  @IsOptional()
  @Matches(DATE_TIME, { message: DATE_TIME_MESSAGE })
  endDate?: string;

  @ApiPropertyOptional({ type: 'string' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  userId?: string;

  @ApiPropertyOptional({ type: 'string', description: 'Exact action name, e.g. auth.login' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  action?: string;

  @ApiPropertyOptional({ type: 'string', enum: AUDIT_SEVERITIES })
  @IsOptional()
  @IsIn(AUDIT_SEVERITIES)
  severity?: AuditSeverity;
}
