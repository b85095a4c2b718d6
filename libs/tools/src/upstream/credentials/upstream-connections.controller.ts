import { Body, Controller, Delete, Get, HttpCode, Param, Put, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  Actor,
  CurrentActor,
  CurrentPrincipal,
  ErrorResponseDto,
  InteractiveOnly,
  Permission,
  Principal,
  RequirePermissions,
  Roles,
} from '@app/core';
import {
  AdminUpstreamConnectionDto,
  AdminUpstreamConnectionListDto,
  AdminUpstreamConnectionsQueryDto,
  StoreUpstreamSecretDto,
  UpstreamConnectionDto,
  UpstreamConnectionListDto,
} from './dto/upstream-connection.dto';
import { UpstreamCredentialService } from './upstream-credential.service';

/**
 * Extension to the contract: each user's own credentials for upstreams declared
 * `auth: user-secret`. Stored with a user login only (an agent's API key cannot set or remove
 * them), write-only: no answer ever carries a secret.
 */
@ApiTags('Tools')
@Controller('upstream-connections')
@RequirePermissions(Permission.TOOLS_EXECUTE)
@InteractiveOnly()
export class UpstreamConnectionsController {
  constructor(private readonly credentials: UpstreamCredentialService) {}

  @Get()
  @ApiOperation({
    summary: 'Your connections to upstreams that act with your own credential (extension)',
    description:
      'Every upstream declared `auth: user-secret` or `auth: user-oauth`, and whether you have a usable credential for it. Never the secret or a token. ' +
      'A user-oauth connection is made in the browser through the link a tool call answers with (URL elicitation or UPSTREAM_CREDENTIAL_REQUIRED).',
  })
  @ApiOkResponse({ type: UpstreamConnectionListDto })
  async list(@CurrentPrincipal() principal: Principal): Promise<UpstreamConnectionListDto> {
    return { connections: (await this.credentials.list(principal)).map((view) => UpstreamConnectionDto.from(view)) };
  }

  @Put(':upstream')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Store your personal token for an upstream (extension)',
    description:
      'Replaces any earlier one. Encrypted at rest (ENCRYPTION_KEY), sent only on your own tool calls to that upstream, never returned ' +
      'by any route, never logged. Audited as upstream.credential.stored (without the secret).',
  })
  @ApiOkResponse({ description: 'The connection (without the secret)', type: UpstreamConnectionDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'No upstream of that name takes your own credential', type: ErrorResponseDto })
  async store(
    @CurrentPrincipal() principal: Principal,
    @Param('upstream') upstream: string,
    @Body() body: StoreUpstreamSecretDto,
    @CurrentActor() client: Actor,
  ): Promise<UpstreamConnectionDto> {
    return UpstreamConnectionDto.from(await this.credentials.store(principal, upstream, body.secret, client));
  }

  @Delete(':upstream')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Disconnect from an upstream: delete your stored token (extension)',
    description:
      'Deletes your personal token (user-secret) or your connection and its tokens (user-oauth). Your next call to its tools fails with ' +
      'UPSTREAM_CREDENTIAL_REQUIRED. Audited as upstream.credential.deleted.',
  })
  @ApiOkResponse({ description: 'The connection, now without a credential', type: UpstreamConnectionDto })
  @ApiNotFoundResponse({ description: 'No such upstream, or no credential of yours for it', type: ErrorResponseDto })
  async remove(
    @CurrentPrincipal() principal: Principal,
    @Param('upstream') upstream: string,
    @CurrentActor() client: Actor,
  ): Promise<UpstreamConnectionDto> {
    return UpstreamConnectionDto.from(await this.credentials.remove(principal, upstream, client));
  }
}

@ApiTags('Admin')
@Roles('admin')
@Controller('admin/upstream-connections')
export class AdminUpstreamConnectionsController {
  constructor(private readonly credentials: UpstreamCredentialService) {}

  @Get()
  @RequirePermissions(Permission.ADMIN_USERS_READ)
  @ApiOperation({
    summary: 'Who is connected to which upstream with their own credential (Admin only, extension)',
    description: 'Never a secret. Ordered by upstream, then email.',
  })
  @ApiOkResponse({ type: AdminUpstreamConnectionListDto })
  async list(@Query() query: AdminUpstreamConnectionsQueryDto): Promise<AdminUpstreamConnectionListDto> {
    const rows = await this.credentials.adminList(query.upstream, query.limit ?? 100);
    return { connections: rows.map((row) => AdminUpstreamConnectionDto.from(row)) };
  }
}
