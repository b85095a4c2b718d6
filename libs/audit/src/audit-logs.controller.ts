import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorResponseDto, RequirePermissions, Roles } from '@app/core';
import { AuditLogQueryDto } from './audit-log-query.dto';
import { AuditLogQueryService } from './audit-log-query.service';
import { AuditChainVerificationDto, AuditCheckpointDto, AuditCheckpointKeyDto, AuditLogListDto } from './audit-log.dto';
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
    description: 'Extension: recomputes every record hash, link and keyed MAC, oldest first, and reports the first tampered record.',
  })
  @ApiOkResponse({ description: 'Verification result', type: AuditChainVerificationDto })
  verify(): Promise<AuditChainVerificationDto> {
    return this.audit.verifyChain();
  }

  @Get('checkpoint')
  @ApiOperation({
    summary: 'Export a signed checkpoint of the audit chain head (Admin only)',
    description:
      'Extension: verifies the chain, then signs {seq, id, hash, createdAt} of its head with the Ed25519 key derived from ' +
      'AUDIT_HMAC_KEY. Keep it outside the database; `cli audit:verify-checkpoint` checks it later with the public key only.',
  })
  @ApiOkResponse({ description: 'Signed checkpoint', type: AuditCheckpointDto })
  @ApiConflictResponse({ description: 'AUDIT_CHAIN_BROKEN or AUDIT_CHAIN_EMPTY: nothing to vouch for', type: ErrorResponseDto })
  checkpoint(): Promise<AuditCheckpointDto> {
    return this.audit.checkpoint();
  }

  @Get('checkpoint-key')
  @ApiOperation({
    summary: 'The public key that checks audit checkpoints (Admin only)',
    description: 'Extension: the Ed25519 public key (PEM) and its key id; give it to whoever verifies checkpoints offline.',
  })
  @ApiOkResponse({ description: 'Checkpoint public key', type: AuditCheckpointKeyDto })
  checkpointKey(): AuditCheckpointKeyDto {
    return { keyId: this.audit.checkpointKeyId, publicKey: this.audit.checkpointPublicKey };
  }
}
