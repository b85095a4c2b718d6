import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor, CurrentActor, CurrentPrincipal, ErrorResponseDto, Permission, Principal, RequirePermissions, Roles } from '@app/core';
import { UpstreamApprovalService } from '../upstream-approval.service';
import { ApproveToolDefinitionDto } from './dto/approve-tool-definition.dto';
import { ToolDefinitionApprovalDto } from './dto/tool-definition-approval.dto';

@ApiTags('Admin')
@Roles('admin')
@Controller('admin/tools')
export class UpstreamApprovalController {
  constructor(private readonly approvals: UpstreamApprovalService) {}

  @Get(':id/approval')
  @RequirePermissions(Permission.ADMIN_TOOLS_WRITE)
  @ApiOperation({
    summary: 'Pinned and offered definition of an upstream tool (Admin only, extension)',
    description:
      'A tool whose upstream changed its definition, or whose definition was flagged on first sight (hidden text, ' +
      'instructions to the model: see findings), stays disabled until the offered definition is approved.',
  })
  @ApiOkResponse({ description: 'The pin', type: ToolDefinitionApprovalDto })
  @ApiNotFoundResponse({ description: 'Not an upstream tool', type: ErrorResponseDto })
  async view(@Param('id') id: string): Promise<ToolDefinitionApprovalDto> {
    return ToolDefinitionApprovalDto.from(await this.approvals.view(id));
  }

  @Post(':id/approve')
  @HttpCode(200)
  @RequirePermissions(Permission.ADMIN_TOOLS_WRITE)
  @ApiOperation({
    summary: 'Approve the definition an upstream now offers for a tool (Admin only, extension)',
    description:
      'Pins the offered definition (by its hash) and re-enables the tool unless an admin override disables it. ' +
      'Audited as tool.definition_approved. Approving the already approved definition changes nothing.',
  })
  @ApiOkResponse({ description: 'The pin after approval', type: ToolDefinitionApprovalDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'Not an upstream tool', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'DEFINITION_HASH_MISMATCH: the upstream offers a different definition now', type: ErrorResponseDto })
  async approve(
    @CurrentPrincipal() actor: Principal,
    @Param('id') id: string,
    @Body() body: ApproveToolDefinitionDto,
    @CurrentActor() client: Actor,
  ): Promise<ToolDefinitionApprovalDto> {
    return ToolDefinitionApprovalDto.from(await this.approvals.approve(actor, id, body.definitionHash, client));
  }
}
