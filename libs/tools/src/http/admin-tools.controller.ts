import { Body, Controller, Param, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor, CurrentActor, CurrentPrincipal, ErrorResponseDto, Permission, Principal, RequirePermissions, Roles } from '@app/core';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import { ToolDto } from './dto/tool.dto';
import { UpdateToolDto } from './dto/update-tool.dto';

@ApiTags('Admin')
@Roles('admin')
@Controller('admin/tools')
export class AdminToolsController {
  constructor(private readonly catalog: ToolCatalogService) {}

  @Put(':id')
  @RequirePermissions(Permission.ADMIN_TOOLS_WRITE)
  @ApiOperation({
    summary: 'Enable or disable a tool, change its rate limit or required permissions (Admin only, extension)',
    description: "Fields given replace the override, null returns a field to the provider's default. Audited.",
  })
  @ApiOkResponse({ description: 'The tool as it now is', type: ToolDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  async update(
    @CurrentPrincipal() actor: Principal,
    @Param('id') id: string,
    @Body() dto: UpdateToolDto,
    @CurrentActor() client: Actor,
  ): Promise<ToolDto> {
    return ToolDto.from(await this.catalog.update(actor, id, dto, client));
  }
}
