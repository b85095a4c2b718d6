import { Global, Module } from '@nestjs/common';
import { AuditLogQueryService } from './audit-log-query.service';
import { AuditLogsController } from './audit-logs.controller';
import { AuditKeyring } from './audit-keyring';
import { AuditService } from './audit.service';

/** Global so every module can write audit records without importing this one. */
@Global()
@Module({
  controllers: [AuditLogsController],
  providers: [AuditService, AuditLogQueryService, AuditKeyring],
  exports: [AuditService],
})
export class AuditModule {}
