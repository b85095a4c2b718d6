import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorResponseDto, RequirePermissions, Roles } from '@app/core';
import { AuditLogQueryDto } from './audit-log-query.dto';
import { AuditLogQueryService } from './audit-log-query.service';
import { AuditChainVerificationDto, AuditLogListDto } from './audit-log.dto';
import { AuditService } from './audit.service';

@ApiTags('Admin')
@Controller('admin/audit-logs')
@Roles('admin')
@RequirePermissions('admin:audit:read')
export class AuditLogsController {
  constructor(
    private readonly queries: AuditLogQueryService,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Get audit logs (Admin only)' })
  @ApiOkResponse({ description: 'Audit logs', type: AuditLogListDto })
  @ApiBadRequestResponse({ description: 'Invalid filters', type: ErrorResponseDto })
  list(@Query() query: AuditLogQueryDto): Promise<AuditLogListDto> {
    return this.queries.list(query);
  }

  @Get('verify')
  @ApiOperation({
    summary: 'Verify the audit hash chain (Admin only)',
    description: 'Extension: recomputes every record hash and link, oldest first, and reports the first tampered record.',
  })
  @ApiOkResponse({ description: 'Verification result', type: AuditChainVerificationDto })
  verify(): Promise<AuditChainVerificationDto> {
    return this.audit.verifyChain();
  }
}
