import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import type { ToolPin } from '../../upstream-pin.store';
import { changedFields } from '../../upstream-tool-definition';
import { DefinitionFindingDto } from './definition-finding.dto';

/** The pin of an upstream tool: what is approved, what the upstream offers now, and how they differ. */
@ApiSchema({ name: 'ToolDefinitionApproval' })
export class ToolDefinitionApprovalDto {
  @ApiProperty({ example: 'everything.echo' }) toolId: string;
  @ApiProperty({ example: 'everything' }) upstream: string;
  @ApiProperty({ example: 'echo', description: "The tool's name on the upstream" }) upstreamTool: string;
  @ApiProperty({ enum: ['approved', 'pending'], description: 'pending: the tool is disabled until the offered definition is approved' })
  status: 'approved' | 'pending';
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'SHA-256 of the approved definition (name, title, description, schemas, annotations); null while a definition flagged on first sight awaits approval',
  })
  approvedHash: string | null;
  @ApiProperty({ description: 'SHA-256 of the definition the upstream offers now; approve this one' }) offeredHash: string;
  @ApiProperty({ type: [String], description: 'Fields that differ between the approved and the offered definition' })
  changedFields: string[];
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) approvedDefinition: Record<string, unknown> | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) offeredDefinition: Record<string, unknown>;
  @ApiProperty({ type: String, format: 'date-time' }) firstSeenAt: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) changedAt: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) approvedAt: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The approving administrator; null when pinned on first sight' }) approvedBy:
    string | null;
  @ApiProperty({
    type: [DefinitionFindingDto],
    description:
      'Hidden text or instructions to the model found in the offered definition; a definition with findings is never trusted without approval',
  })
  findings: DefinitionFindingDto[];

  static from(pin: ToolPin): ToolDefinitionApprovalDto {
    const dto = new ToolDefinitionApprovalDto();
    dto.toolId = pin.toolId;
    dto.upstream = pin.upstream;
    dto.upstreamTool = pin.upstreamTool;
    dto.status = pin.status;
    dto.approvedHash = pin.approvedHash;
    dto.offeredHash = pin.offeredHash;
    dto.changedFields = pin.approvedHash === pin.offeredHash ? [] : changedFields(pin.approvedDefinition, pin.offeredDefinition);
    dto.approvedDefinition = pin.approvedDefinition ? { ...pin.approvedDefinition } : null;
    dto.offeredDefinition = { ...pin.offeredDefinition };
    dto.firstSeenAt = pin.firstSeenAt.toISOString();
    dto.changedAt = pin.changedAt?.toISOString() ?? null;
    dto.approvedAt = pin.approvedAt?.toISOString() ?? null;
    dto.approvedBy = pin.approvedBy;
    dto.findings = pin.findings.map((finding) => ({ kind: finding.kind, field: finding.field, excerpt: finding.excerpt }));
    return dto;
  }
}
