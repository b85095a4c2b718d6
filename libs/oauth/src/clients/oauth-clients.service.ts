import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { Actor, AppException, Clock, newId } from '@app/core';
import { UnitOfWork } from '@app/database';
import { OAuthProvider } from '../provider/oauth-provider';
import { OAuthStoreRepository } from '../store/oauth-store.repository';
import { CreatedOAuthClientDto, CreateOAuthClientDto, OAuthClientDto } from './oauth-client.dto';

/** Pre-registered OAuth clients (the admin API), stored where the provider finds its clients. */
@Injectable()
export class OAuthClientsService {
  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly store: OAuthStoreRepository,
    private readonly oauth: OAuthProvider,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async create(dto: CreateOAuthClientDto, client: Actor): Promise<CreatedOAuthClientDto> {
    const clientId = newId('oac');
    const secret = dto.confidential ? randomBytes(32).toString('base64url') : undefined;
    const metadata: Record<string, unknown> = {
      client_id: clientId,
      client_name: dto.clientName,
      redirect_uris: [...new Set(dto.redirectUris)],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
      application_type: dto.redirectUris.every((uri) => uri.startsWith('http://')) ? 'native' : 'web',
      client_id_issued_at: Math.floor(this.clock.nowMs() / 1000),
      ...(secret ? { client_secret: secret } : {}),
    };
    const provider = await this.oauth.get();
    try {
      await provider.Client.validate(metadata);
    } catch (error) {
      const message = (error as { error_description?: string }).error_description ?? 'invalid client metadata';
      throw AppException.validation([{ field: 'redirectUris', message }]);
    }
    await this.unitOfWork.run(async (tx) => {
      await this.store.insertClient(tx, clientId, metadata);
      await this.audit.record(
        tx,
        auditEvent(AuditAction.OAUTH_CLIENT_CREATED, client, {
          resource: `oauth_client:${clientId}`,
          details: { clientName: dto.clientName, redirectUris: metadata.redirect_uris, confidential: Boolean(secret) },
        }),
      );
    });
    return { ...viewOf(metadata), ...(secret ? { clientSecret: secret } : {}) };
  }

  async list(): Promise<OAuthClientDto[]> {
    return (await this.store.listClients()).map(viewOf);
  }

  async remove(clientId: string, client: Actor): Promise<void> {
    const removed = await this.unitOfWork.run(async (tx) => {
      if (!(await this.store.deleteClient(tx, clientId))) return false;
      await this.audit.record(tx, auditEvent(AuditAction.OAUTH_CLIENT_DELETED, client, { resource: `oauth_client:${clientId}` }));
      return true;
    });
    if (!removed) throw AppException.notFound('OAuth client not found');
  }
}

function viewOf(metadata: Record<string, unknown>): OAuthClientDto {
  const issued = typeof metadata.client_id_issued_at === 'number' ? new Date(metadata.client_id_issued_at * 1000).toISOString() : null;
  return {
    clientId: String(metadata.client_id),
    clientName: String(metadata.client_name ?? ''),
    redirectUris: Array.isArray(metadata.redirect_uris) ? (metadata.redirect_uris as string[]) : [],
    tokenEndpointAuthMethod: String(metadata.token_endpoint_auth_method ?? 'client_secret_basic'),
    createdAt: issued,
  };
}
