import { Body, Controller, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
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
import { UserDto } from '@app/users';
import { AdminUsersService } from './admin-users.service';
import { ListUsersQueryDto } from './dto/list-users-query.dto';
import { MfaResetResponseDto } from './dto/mfa-reset-response.dto';
import { UpdateRolesDto } from './dto/update-roles.dto';
import { UserListDto } from './dto/user-list.dto';

@ApiTags('Admin')
@Roles('admin')
@Controller('admin/users')
export class AdminUsersController {
  constructor(private readonly admin: AdminUsersService) {}

  @Get()
  @RequirePermissions(Permission.ADMIN_USERS_READ)
  @ApiOperation({ summary: 'List users (Admin only)' })
  @ApiOkResponse({ description: 'Users list', type: UserListDto })
  list(@Query() query: ListUsersQueryDto): Promise<UserListDto> {
    return this.admin.list(query);
  }

  @Put(':id/roles')
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @ApiOperation({ summary: 'Update user roles (Admin only)' })
  @ApiOkResponse({ description: 'Roles updated', type: UserDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'LAST_ADMIN: the last active administrator cannot lose the role', type: ErrorResponseDto })
  updateRoles(
    @CurrentPrincipal() actor: Principal,
    @Param('id') id: string,
    @Body() dto: UpdateRolesDto,
    @CurrentActor() client: Actor,
  ): Promise<UserDto> {
    return this.admin.updateRoles(actor, id, dto, client);
  }

  @Post(':id/suspend')
  @HttpCode(200)
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @ApiOperation({ summary: 'Suspend a user and end all their sessions (Admin only, extension)' })
  @ApiOkResponse({ description: 'User suspended', type: UserDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'Not active, the caller themselves, or the last active admin', type: ErrorResponseDto })
  suspend(@CurrentPrincipal() actor: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<UserDto> {
    return this.admin.suspend(actor, id, client);
  }

  @Post(':id/reactivate')
  @HttpCode(200)
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @ApiOperation({ summary: 'Reactivate a suspended user (Admin only, extension)' })
  @ApiOkResponse({ description: 'User reactivated', type: UserDto })
  @ApiNotFoundResponse({ description: 'Resource not found', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'The user is not suspended', type: ErrorResponseDto })
  reactivate(@CurrentPrincipal() actor: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<UserDto> {
    return this.admin.reactivate(actor, id, client);
  }

  @Post(':id/mfa/reset')
  @HttpCode(200)
  @RequirePermissions(Permission.ADMIN_USERS_WRITE)
  @InteractiveOnly()
  @ApiOperation({
    summary: "Reset a user's MFA and end all their sessions (Admin only, extension)",
    description:
      'For a user who lost their factor (or whose factor may be in other hands): removes the active factor, any ' +
      'pending enrollment, the backup codes and outstanding SMS codes, and ends every session of the user, who ' +
      'signs in again with the password alone and enrolls afresh. Audited with critical severity. Not for your ' +
      'own account, and only with a user login (API keys get 403).',
  })
  @ApiOkResponse({ description: 'MFA reset', type: MfaResetResponseDto })
  @ApiNotFoundResponse({ description: 'NOT_FOUND: no such user', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'MFA_NOT_ENABLED: nothing to reset; CONFLICT: your own account', type: ErrorResponseDto })
  resetMfa(@CurrentPrincipal() actor: Principal, @Param('id') id: string, @CurrentActor() client: Actor): Promise<MfaResetResponseDto> {
    return this.admin.resetMfa(actor, id, client);
  }
}
