import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import type { ApiKeyStatus, ApiKeyView } from '../api-key.view';

/** An agent API key as listings show it: never the key itself. */
@ApiSchema({ name: 'ApiKey' })
export class ApiKeyDto {
  @ApiProperty({ example: 'key_3Jk2mQ0vXbYt1s4p' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ example: 'smcp_Ab3xQ9', description: 'The first characters of the key, to recognise it' }) prefix: string;
  @ApiProperty({ type: [String], nullable: true, description: "Null: all of the owner's permissions at each use" })
  permissions: string[] | null;
  @ApiProperty({ type: 'string', nullable: true }) contextId: string | null;
  @ApiProperty({ enum: ['active', 'expired', 'revoked'] }) status: ApiKeyStatus;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) expiresAt: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) lastUsedAt: string | null;
  @ApiProperty({ type: 'string', format: 'date-time', nullable: true }) revokedAt: string | null;

  static from(view: ApiKeyView): ApiKeyDto {
    return Object.assign(new ApiKeyDto(), {
      id: view.id,
      name: view.name,
      prefix: view.prefix,
      permissions: view.permissions,
      contextId: view.contextId,
      status: view.status,
      expiresAt: view.expiresAt?.toISOString() ?? null,
      createdAt: view.createdAt.toISOString(),
      lastUsedAt: view.lastUsedAt?.toISOString() ?? null,
      revokedAt: view.revokedAt?.toISOString() ?? null,
    });
  }
}

/** The answer to creating a key: the only time the key itself is ever shown. */
@ApiSchema({ name: 'CreatedApiKey' })
export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ example: 'smcp_Ab3xQ9…', description: 'The key. Shown once: store it now, it cannot be read again' })
  key: string;
}

@ApiSchema({ name: 'ApiKeyList' })
export class ApiKeyListDto {
  @ApiProperty({ type: [ApiKeyDto] }) apiKeys: ApiKeyDto[];
}
