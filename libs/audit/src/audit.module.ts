import { Global, Module } from '@nestjs/common';
import { AuditLogQueryService } from './audit-log-query.service';
import { AuditLogsController } from './audit-logs.controller';
import { AuditKeyring } from './audit-keyring';
import { AuditLogRepository } from './audit-log.repository';
import { AuditService } from './audit.service';

/** Global so every module can write audit records without importing this one. */
@Global()
@Module({
  controllers: [AuditLogsController],
  providers: [AuditService, AuditLogQueryService, AuditKeyring, AuditLogRepository],
  exports: [AuditService],
})
export class AuditModule {}
