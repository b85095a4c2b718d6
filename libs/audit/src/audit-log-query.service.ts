import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppException, paginationOf } from '@app/core';
import { AuditLogQueryDto } from './audit-log-query.dto';
import { AuditLogDto, AuditLogListDto } from './audit-log.dto';
import { AUDIT_LOG_COLUMNS, AuditLogRow, auditRowContent } from './audit-log.row';

/** Reads the audit log for administrators: filtered, newest first, paginated. */
@Injectable()
export class AuditLogQueryService {
  constructor(private readonly dataSource: DataSource) {}

  async list(query: AuditLogQueryDto): Promise<AuditLogListDto> {
    if (query.startDate && query.endDate && Date.parse(query.startDate) > Date.parse(query.endDate)) {
      throw AppException.validation([{ field: 'startDate', message: 'startDate must not be after endDate', code: 'dateRange' }]);
    }
    const conditions: string[] = [];
    const params: unknown[] = [];
    const where = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (query.startDate) where('timestamp >= ?::timestamptz', query.startDate);
    if (query.endDate) where('timestamp <= ?::timestamptz', query.endDate);
    if (query.userId) where('user_id = ?', query.userId);
    if (query.action) where('action = ?', query.action);
    if (query.severity) where('severity = ?', query.severity);
    const filter = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';

    const [{ total }]: Array<{ total: string }> = await this.dataSource.query(
      `SELECT count(*) AS total FROM audit_logs ${filter}`,
      params,
    );
    const rows: AuditLogRow[] = await this.dataSource.query(
      `SELECT ${AUDIT_LOG_COLUMNS} FROM audit_logs ${filter}
       ORDER BY timestamp DESC, seq DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, query.limit, (query.page - 1) * query.limit],
    );
    return { logs: rows.map(toDto), pagination: paginationOf(query, Number(total)) };
  }
}

/** The API shows exactly the hashed content of a row (never seq or hashes). */
function toDto(row: AuditLogRow): AuditLogDto {
  return auditRowContent(row);
}
