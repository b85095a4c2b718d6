import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Actor, CurrentActor, CurrentPrincipal, ErrorResponseDto, Permission, Principal, RequirePermissions } from '@app/core';
import { ContextsService } from './contexts.service';
import { ContextListDto } from './dto/context-list.dto';
import { ContextDto } from './dto/context.dto';
import { CreateContextDto } from './dto/create-context.dto';
import { ListContextsQueryDto } from './dto/list-contexts-query.dto';
import { UpdateContextDto } from './dto/update-context.dto';

const notFound = { description: 'Resource not found (also for contexts of other users)', type: ErrorResponseDto };
const invalid = {
  description: 'Validation error: one detail per offending field, e.g. tools[2] for an unknown tool, metadata too large or deep',
  type: ErrorResponseDto,
};
const toolsForbidden = {
  description: 'Insufficient permissions, or tools you may not call (one detail per tools[i])',
  type: ErrorResponseDto,
};

@ApiTags('Contexts')
@Controller('contexts')
export class ContextsController {
  constructor(private readonly contexts: ContextsService) {}

  @Get()
  @RequirePermissions(Permission.CONTEXTS_READ)
  @ApiOperation({
    summary: 'List contexts',
    description:
      "Your contexts (administrators holding admin:contexts:read: everyone's; not for context-bound API keys). Extensions: page, limit (at most 100) and userId (administrators " +
      'any user, others only themselves). Default order: name ascending, created and updated newest first.',
  })
  @ApiOkResponse({ description: 'Contexts list', type: ContextListDto })
  @ApiBadRequestResponse({ description: 'Validation error (e.g. limit above 100)', type: ErrorResponseDto })
  list(@CurrentPrincipal() principal: Principal, @Query() query: ListContextsQueryDto): Promise<ContextListDto> {
    return this.contexts.list(principal, query);
  }

  @Post()
  @RequirePermissions(Permission.CONTEXTS_WRITE)
  @ApiOperation({ summary: 'Create context' })
  @ApiCreatedResponse({ description: 'Context created', type: ContextDto })
  @ApiBadRequestResponse(invalid)
  @ApiForbiddenResponse(toolsForbidden)
  create(@CurrentPrincipal() principal: Principal, @Body() dto: CreateContextDto, @CurrentActor() client: Actor): Promise<ContextDto> {
    return this.contexts.create(principal, dto, client);
  }

  @Get(':id')
  @RequirePermissions(Permission.CONTEXTS_READ)
  @ApiOperation({ summary: 'Get context' })
  @ApiOkResponse({ description: 'Context details', type: ContextDto })
  @ApiNotFoundResponse(notFound)
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<ContextDto> {
    return this.contexts.get(principal, id);
  }

  @Put(':id')
  @RequirePermissions(Permission.CONTEXTS_WRITE)
  @ApiOperation({
    summary: 'Update context',
    description: 'Fields given replace the stored ones. Extension: status active or archived (archived contexts cannot run tools).',
  })
  @ApiOkResponse({ description: 'Context updated', type: ContextDto })
  @ApiBadRequestResponse(invalid)
  @ApiForbiddenResponse(toolsForbidden)
  @ApiNotFoundResponse(notFound)
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Body() dto: UpdateContextDto,
    @CurrentActor() client: Actor,
  ): Promise<ContextDto> {
    return this.contexts.update(principal, id, dto, client);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequirePermissions(Permission.CONTEXTS_WRITE)
  @ApiOperation({ summary: 'Delete context' })
  @ApiNoContentResponse({ description: 'Context deleted' })
  @ApiNotFoundResponse(notFound)
  async remove(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<void> {
    await this.contexts.remove(principal, id, client);
  }
}
