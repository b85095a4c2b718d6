import { Injectable } from '@nestjs/common';
import { AppException, paginationOf } from '@app/core';
import { AuditLogQueryDto } from './audit-log-query.dto';
import { AuditLogDto, AuditLogListDto } from './audit-log.dto';
import { AuditLogRepository, AuditLogRow, auditRowContent } from './audit-log.repository';

/** Reads the audit log for administrators: filtered, newest first, paginated. */
@Injectable()
export class AuditLogQueryService {
  constructor(private readonly rows: AuditLogRepository) {}

  async list(query: AuditLogQueryDto): Promise<AuditLogListDto> {
    if (query.startDate && query.endDate && Date.parse(query.startDate) > Date.parse(query.endDate)) {
      throw AppException.validation([{ field: 'startDate', message: 'startDate must not be after endDate', code: 'dateRange' }]);
    }
    const { rows, total } = await this.rows.page(query, query.limit, (query.page - 1) * query.limit);
    return { logs: rows.map(toDto), pagination: paginationOf(query, total) };
  }
}

/** The API shows exactly the hashed content of a row (never seq or hashes). */
function toDto(row: AuditLogRow): AuditLogDto {
  return auditRowContent(row);
}
