import { Controller, Delete, Get, HttpCode, Param } from '@nestjs/common';
import { ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import {
  Actor,
  Authenticated,
  CurrentActor,
  CurrentPrincipal,
  ErrorResponseDto,
  InteractiveOnly,
  Permission,
  Principal,
  RequirePermissions,
  Roles,
} from '@app/core';
import { OAuthGrantsService, OAuthGrantView } from './oauth-grants.service';

class OAuthGrantDto implements OAuthGrantView {
  @ApiProperty() id: string;
  @ApiProperty() clientId: string;
  @ApiProperty({ nullable: true, type: String }) clientName: string | null;
  @ApiProperty({ type: [String] }) scopes: string[];
  @ApiProperty({ type: [String], description: 'MCP endpoints (canonical URLs) the grant reaches' }) resources: string[];
  @ApiProperty({ description: 'The gateway session its tokens belong to (GET /sessions)' }) sessionId: string;
  @ApiProperty({ enum: ['active', 'revoked', 'ended'] }) status: 'active' | 'revoked' | 'ended';
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
}

class OAuthGrantListDto {
  @ApiProperty({ type: [OAuthGrantDto] }) grants: OAuthGrantDto[];
}

@ApiTags('Authentication')
@Authenticated()
@InteractiveOnly()
@Controller('auth/oauth/grants')
export class OAuthGrantsController {
  constructor(private readonly grants: OAuthGrantsService) {}

  @Get()
  @ApiOperation({
    summary: 'List my OAuth grants (extension)',
    description: '(extension) The consents you gave to OAuth clients (MCP hosts): client, scopes, MCP endpoints, session, status.',
  })
  @ApiOkResponse({ description: 'Grants', type: OAuthGrantListDto })
  async list(@CurrentPrincipal() principal: Principal): Promise<OAuthGrantListDto> {
    return { grants: await this.grants.list(principal) };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke an OAuth grant (extension)',
    description:
      '(extension) Its refresh tokens are deleted and its session ends: its access tokens are refused from the next request on; the client must ask for consent again.',
  })
  @ApiNoContentResponse({ description: 'Revoked' })
  @ApiNotFoundResponse({ description: 'Resource not found (or not yours)', type: ErrorResponseDto })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<void> {
    await this.grants.revoke(principal, id, client);
  }
}

@ApiTags('Admin')
@Roles('admin')
@InteractiveOnly()
@Controller('admin/oauth/grants')
export class AdminOAuthGrantsController {
  constructor(private readonly grants: OAuthGrantsService) {}

  @Delete(':id')
  @HttpCode(204)
  @RequirePermissions(Permission.ADMIN_SESSIONS_WRITE)
  @ApiOperation({
    summary: "Revoke any user's OAuth grant (extension, Admin only)",
    description: "(extension) As the owner's DELETE /auth/oauth/grants/{id}: its tokens are refused from the next request on.",
  })
  @ApiNoContentResponse({ description: 'Revoked' })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<void> {
    await this.grants.revoke(principal, id, client, true);
  }
}
