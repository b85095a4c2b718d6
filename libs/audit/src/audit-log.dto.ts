import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { PaginationDto } from '@app/core';
import { AUDIT_RESULTS, AUDIT_SEVERITIES, AuditResult, AuditSeverity } from './audit-entry';

/** One audit record as the contract shows it (the chain columns stay internal). */
@ApiSchema({ name: 'AuditLog' })
export class AuditLogDto {
  @ApiProperty({ example: 'aud_4Jt3x9QeWm1c2Vb7' }) id: string;
  @ApiProperty({ type: 'string', format: 'date-time' }) timestamp: string;
  @ApiProperty({ type: 'string', nullable: true }) userId: string | null;
  @ApiProperty({ example: 'auth.login' }) action: string;
  @ApiProperty({ type: 'string', nullable: true }) resource: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
  @ApiProperty({ type: 'string', enum: AUDIT_RESULTS }) result: AuditResult;
  @ApiProperty({ type: 'string', nullable: true }) ipAddress: string | null;
  @ApiProperty({ type: 'string', nullable: true }) userAgent: string | null;
  @ApiProperty({ type: 'string', enum: AUDIT_SEVERITIES }) severity: AuditSeverity;
  @ApiProperty({ type: 'object', additionalProperties: true }) metadata: Record<string, unknown>;
}

@ApiSchema({ name: 'AuditLogList' })
export class AuditLogListDto {
  @ApiProperty({ type: [AuditLogDto] }) logs: AuditLogDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

@ApiSchema({ name: 'AuditChainInvalidRow' })
export class AuditChainInvalidRowDto {
  @ApiProperty() id: string;
  @ApiProperty({ type: 'integer', description: 'Position in the chain (the table sequence)' }) seq: number;
  @ApiProperty({ example: 'hash does not match the row content: the row was altered' }) reason: string;
}

@ApiSchema({ name: 'AuditChainHead' })
export class AuditChainHeadDto {
  @ApiProperty({ type: 'integer' }) seq: number;
  @ApiProperty() id: string;
  @ApiProperty() hash: string;
}

@ApiSchema({ name: 'AuditChainVerification' })
export class AuditChainVerificationDto {
  @ApiProperty() valid: boolean;
  @ApiProperty({ type: 'integer', description: 'Rows examined, including the first invalid one' }) checked: number;
  @ApiProperty({ type: AuditChainInvalidRowDto, nullable: true }) firstInvalid: AuditChainInvalidRowDto | null;
  @ApiProperty({
    type: 'integer',
    description: 'Rows written before the keyed chain (no MAC): only their SHA-256 chain and exported checkpoints vouch for them',
  })
  unkeyedRecords: number;
  @ApiProperty({ type: AuditChainHeadDto, nullable: true, description: 'The last row that verified' }) head: AuditChainHeadDto | null;
}

@ApiSchema({ name: 'AuditCheckpoint' })
export class AuditCheckpointDto {
  @ApiProperty({ example: 'smcp-audit-checkpoint/1' }) format: 'smcp-audit-checkpoint/1';
  @ApiProperty({ type: 'integer', description: 'Sequence of the chain head' }) seq: number;
  @ApiProperty() id: string;
  @ApiProperty({ description: 'SHA-256 chain hash of the head row (hex)' }) hash: string;
  @ApiProperty({ type: 'string', format: 'date-time' }) createdAt: string;
  @ApiProperty({ description: 'First 16 hex digits of SHA-256 over the signing public key (DER)' }) keyId: string;
  @ApiProperty({ description: 'Ed25519 signature (base64) over the other fields, canonical JSON' }) signature: string;
}

@ApiSchema({ name: 'AuditCheckpointKey' })
export class AuditCheckpointKeyDto {
  @ApiProperty() keyId: string;
  @ApiProperty({ description: 'Ed25519 public key, SubjectPublicKeyInfo PEM' }) publicKey: string;
}
