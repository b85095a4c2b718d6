import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  Actor,
  CurrentActor,
  CurrentPrincipal,
  ErrorResponseDto,
  InteractiveOnly,
  Permission,
  Principal,
  RequirePermissions,
} from '@app/core';
import { NoStore } from '../decorators/no-store.decorator';
import { ApiKeyService } from './api-key.service';
import { ApiKeyDto, ApiKeyListDto, CreatedApiKeyDto } from './dto/api-key.dto';
import { CreateApiKeyDto } from './dto/create-api-key.dto';

/** Extension to the contract: agent API keys, managed by their owner with a user login. */
@ApiTags('Authentication')
@Controller('auth/api-keys')
@RequirePermissions(Permission.APIKEYS_MANAGE)
@InteractiveOnly()
export class ApiKeysController {
  constructor(private readonly keys: ApiKeyService) {}

  @Post()
  @NoStore()
  @ApiOperation({
    summary: 'Create an agent API key (extension)',
    description:
      'Returns the key once. Send it as `Authorization: Bearer <key>` to the REST API and the MCP endpoints. ' +
      'Optional expiry, binding to one context, and a subset of your permissions. Not available to API-key callers.',
  })
  @ApiCreatedResponse({ description: 'The key (shown only now) and its settings', type: CreatedApiKeyDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateApiKeyDto,
    @CurrentActor() client: Actor,
  ): Promise<CreatedApiKeyDto> {
    const { key, view } = await this.keys.create(principal, dto, client);
    return Object.assign(new CreatedApiKeyDto(), ApiKeyDto.from(view), { key });
  }

  @Get()
  @ApiOperation({ summary: 'List your agent API keys (extension; never shows the keys)' })
  @ApiOkResponse({ description: 'Your keys, newest first', type: ApiKeyListDto })
  async list(@CurrentPrincipal() principal: Principal): Promise<ApiKeyListDto> {
    return { apiKeys: (await this.keys.list(principal)).map((view) => ApiKeyDto.from(view)) };
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Revoke an agent API key (extension)',
    description: "Ends the key's session, closing its live MCP connections.",
  })
  @ApiOkResponse({ description: 'The revoked key', type: ApiKeyDto })
  @ApiNotFoundResponse({ description: 'No such key of yours', type: ErrorResponseDto })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<ApiKeyDto> {
    return ApiKeyDto.from(await this.keys.revoke(principal, id, client));
  }
}
