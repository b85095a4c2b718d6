import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import type { UpstreamConnection } from '../upstream-credential.repository';
import { MAX_SECRET_LENGTH, type ConnectionView } from '../upstream-credential.service';

/** The body of PUT /upstream-connections/{upstream}: the secret goes in, and never comes out again. */
@ApiSchema({ name: 'StoreUpstreamSecretRequest' })
export class StoreUpstreamSecretDto {
  @ApiProperty({
    description:
      'Your personal token for the upstream (a PAT, an API key). Write-only: stored encrypted, sent only on your own calls, never returned.',
    minLength: 1,
    maxLength: MAX_SECRET_LENGTH,
    writeOnly: true,
  })
  @IsString()
  @Length(1, MAX_SECRET_LENGTH)
  secret: string;
}

/** A per-user upstream as its user sees it: connected or not, never the secret. */
@ApiSchema({ name: 'UpstreamConnection' })
export class UpstreamConnectionDto {
  @ApiProperty({ example: 'github' }) upstream: string;
  @ApiProperty({ enum: ['user-secret', 'user-oauth'], description: 'How the upstream takes your credential' }) mode: string;
  @ApiProperty({
    description: 'Whether you have a usable credential stored for it (user-oauth: false once the upstream revoked it; connect again)',
  })
  connected: boolean;
  @ApiProperty({
    description: 'A stored connection the upstream stopped accepting (user-oauth: its refresh was refused): connect again, or disconnect',
  })
  broken: boolean;
  @ApiProperty({ type: 'string', nullable: true, description: 'Where to set it, when the operator configured a page' })
  connectUrl: string | null;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) createdAt: string | null;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) updatedAt: string | null;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true, description: 'Last tool call that used it' })
  lastUsedAt: string | null;

  static from(view: ConnectionView): UpstreamConnectionDto {
    return Object.assign(new UpstreamConnectionDto(), {
      upstream: view.upstream,
      mode: view.mode,
      connected: view.connected,
      broken: view.broken,
      connectUrl: view.connectUrl,
      createdAt: view.createdAt?.toISOString() ?? null,
      updatedAt: view.updatedAt?.toISOString() ?? null,
      lastUsedAt: view.lastUsedAt?.toISOString() ?? null,
    });
  }
}

@ApiSchema({ name: 'UpstreamConnectionList' })
export class UpstreamConnectionListDto {
  @ApiProperty({ type: [UpstreamConnectionDto] }) connections: UpstreamConnectionDto[];
}

/** Who is connected to what (admins): never a secret. */
@ApiSchema({ name: 'AdminUpstreamConnection' })
export class AdminUpstreamConnectionDto {
  @ApiProperty() upstream: string;
  @ApiProperty() userId: string;
  @ApiProperty() email: string;
  @ApiProperty({ enum: ['active', 'suspended', 'deleted'], description: "Only an active user's credential is ever used" })
  userStatus: string;
  @ApiProperty({ enum: ['user-secret', 'user-oauth'] }) mode: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) lastUsedAt: string | null;

  static from(row: UpstreamConnection & { email: string; userStatus: string }): AdminUpstreamConnectionDto {
    return Object.assign(new AdminUpstreamConnectionDto(), {
      upstream: row.upstream,
      userId: row.userId,
      email: row.email,
      userStatus: row.userStatus,
      mode: row.mode,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
      lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    });
  }
}

@ApiSchema({ name: 'AdminUpstreamConnectionList' })
export class AdminUpstreamConnectionListDto {
  @ApiProperty({ type: [AdminUpstreamConnectionDto] }) connections: AdminUpstreamConnectionDto[];
}

export class AdminUpstreamConnectionsQueryDto {
  @ApiPropertyOptional({ description: 'Only connections to this upstream' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,62}$/)
  upstream?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}
