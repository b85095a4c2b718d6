import { Column, Entity, PrimaryColumn } from 'typeorm';

export type SessionStatus = 'active' | 'terminated';
export type ConnectionType = 'http' | 'websocket';

/**
 * One client connection: a login (http), an MCP session or a WebSocket. Access tokens carry
 * its id; when it stops being active every token of it stops working.
 */
@Entity('sessions')
export class SessionEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  @Column({ name: 'user_id', type: 'text' }) userId: string;
  @Column({ name: 'context_id', type: 'text', nullable: true }) contextId: string | null;
  @Column({ type: 'text', default: 'active' }) status: SessionStatus;
  @Column({ name: 'connection_type', type: 'text', default: 'http' }) connectionType: ConnectionType;
  @Column({ name: 'ip_address', type: 'text', nullable: true }) ipAddress: string | null;
  @Column({ name: 'user_agent', type: 'text', nullable: true }) userAgent: string | null;
  @Column({ name: 'started_at', type: 'timestamptz' }) startedAt: Date;
  @Column({ name: 'last_activity', type: 'timestamptz' }) lastActivity: Date;
  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true }) endedAt: Date | null;
  /** logout | terminated | refresh_reuse | expired | suspended | mfa_changed | ... */
  @Column({ name: 'end_reason', type: 'text', nullable: true }) endReason: string | null;
  /** Who ended it (a user id), when it was ended by someone. */
  @Column({ name: 'ended_by', type: 'text', nullable: true }) endedBy: string | null;
  @Column({ name: 'messages_received', type: 'integer', default: 0 }) messagesReceived: number;
  @Column({ name: 'messages_sent', type: 'integer', default: 0 }) messagesSent: number;
  @Column({ name: 'tool_executions', type: 'integer', default: 0 }) toolExecutions: number;
  @Column({ type: 'integer', default: 0 }) errors: number;
}

/**
 * Refresh tokens: random, stored as SHA-256 hashes, single use. A used token presented again
 * means it was stolen: the whole session is revoked (RFC 9700 reuse detection).
 */
@Entity('refresh_tokens')
export class RefreshTokenEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  @Column({ name: 'session_id', type: 'text' }) sessionId: string;
  @Column({ name: 'token_hash', type: 'text' }) tokenHash: string;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt: Date;
  @Column({ name: 'used_at', type: 'timestamptz', nullable: true }) usedAt: Date | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
