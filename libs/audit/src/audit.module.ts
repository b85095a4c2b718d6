import { Global, Module } from '@nestjs/common';
import { AuditLogQueryService } from './audit-log-query.service';
import { AuditLogsController } from './audit-logs.controller';
import { AuditKeyring } from './audit-keyring';
import { AuditLogRepository } from './audit-log.repository';
import { AuditService } from './audit.service';
import { AuditExportCursorRepository } from './export/audit-export-cursor.repository';
import { auditExportMetricProviders } from './export/audit-export.metrics';
import { AuditExporter } from './export/audit-exporter.service';

/** Global so every module can write audit records without importing this one. */
@Global()
@Module({
  controllers: [AuditLogsController],
  providers: [
    AuditService,
    AuditLogQueryService,
    AuditKeyring,
    AuditLogRepository,
    AuditExportCursorRepository,
    AuditExporter,
    ...auditExportMetricProviders,
  ],
  exports: [AuditService, AuditExporter],
})
export class AuditModule {}
