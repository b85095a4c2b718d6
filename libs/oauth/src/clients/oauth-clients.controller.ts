import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Actor, CurrentActor, ErrorResponseDto, InteractiveOnly, Permission, RequirePermissions, Roles } from '@app/core';
import { CreatedOAuthClientDto, CreateOAuthClientDto, OAuthClientListDto } from './oauth-client.dto';
import { OAuthClientsService } from './oauth-clients.service';

@ApiTags('Admin')
@Roles('admin')
@InteractiveOnly()
@Controller('admin/oauth/clients')
export class OAuthClientsController {
  constructor(private readonly clients: OAuthClientsService) {}

  @Post()
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @ApiOperation({
    summary: 'Register an OAuth client (extension, Admin only)',
    description:
      '(extension) Pre-registers a client of the OAuth authorization server: exact redirect URIs, authorization code + PKCE. ' +
      'A confidential client gets a client secret, shown once.',
  })
  @ApiCreatedResponse({ description: 'Client registered', type: CreatedOAuthClientDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  create(@Body() dto: CreateOAuthClientDto, @CurrentActor() client: Actor): Promise<CreatedOAuthClientDto> {
    return this.clients.create(dto, client);
  }

  @Get()
  @RequirePermissions(Permission.ADMIN_USERS_READ)
  @ApiOperation({
    summary: 'List OAuth clients (extension, Admin only)',
    description: '(extension) Pre-registered and dynamically registered clients.',
  })
  @ApiOkResponse({ description: 'Clients', type: OAuthClientListDto })
  async list(): Promise<OAuthClientListDto> {
    return { clients: await this.clients.list() };
  }

  @Delete(':id')
  @HttpCode(204)
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @ApiOperation({
    summary: 'Delete an OAuth client (extension, Admin only)',
    description: '(extension) The client can no longer start a sign-in or refresh.',
  })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  async remove(@Param('id') id: string, @CurrentActor() client: Actor): Promise<void> {
    await this.clients.remove(id, client);
  }
}
