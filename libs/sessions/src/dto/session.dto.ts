import { ApiProperty, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'SessionMetrics' })
export class SessionMetricsDto {
  /** Requests (REST) or protocol messages (MCP) received in the session. */
  @ApiProperty({ type: 'integer' }) messagesReceived: number;
  @ApiProperty({ type: 'integer' }) messagesSent: number;
  /** Tool calls that ran (completed or failed). */
  @ApiProperty({ type: 'integer' }) toolExecutions: number;
  /** Tool calls that failed plus requests answered with an error (4xx/5xx), e.g. invalid tool parameters. */
  @ApiProperty({ type: 'integer' }) errors: number;
}

/**
 * The contract's Session. Every ended session (logout, termination, idle expiry, revocation)
 * is `terminated`: the contract has no other state, and why it ended is kept internally.
 */
@ApiSchema({ name: 'Session' })
export class SessionDto {
  @ApiProperty({ example: 'ses_8Jk2mQ0vXbYt1s4p' }) id: string;
  @ApiProperty() userId: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'The context the session works in, if any' }) contextId: string | null;
  @ApiProperty({ enum: ['active', 'terminated'] }) status: 'active' | 'terminated';
  @ApiProperty({ enum: ['websocket', 'http'] }) connectionType: 'websocket' | 'http';
  @ApiProperty({ type: 'string', nullable: true }) ipAddress: string | null;
  @ApiProperty({ type: 'string', nullable: true }) userAgent: string | null;
  @ApiProperty({ format: 'date-time' }) startedAt: string;
  @ApiProperty({ format: 'date-time' }) lastActivity: string;
  @ApiProperty({ type: SessionMetricsDto, description: 'Live: includes counts not yet written to the database' })
  metrics: SessionMetricsDto;
}
