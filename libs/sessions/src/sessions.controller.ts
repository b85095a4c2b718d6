import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
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
} from '@app/core';
import { ListSessionsQueryDto } from './dto/list-sessions-query.dto';
import { SessionListDto } from './dto/session-list.dto';
import { TerminateSessionResponseDto } from './dto/terminate-session-response.dto';
import { SessionQueryService } from './session-query.service';
import { SessionTerminationService } from './session-termination.service';

@ApiTags('Sessions')
@Controller('sessions')
export class SessionsController {
  constructor(
    private readonly query: SessionQueryService,
    private readonly termination: SessionTerminationService,
  ) {}

  @Get()
  @RequirePermissions(Permission.SESSIONS_READ)
  @ApiOperation({
    summary: 'List sessions',
    description:
      "The caller's sessions, newest first; administrators (admin:sessions:read) see everyone's, a context-bound API key its context's only. Metrics are live. Extensions: page, limit, " +
      'status, userId (administrators: any user; others: only themselves, else 403).',
  })
  @ApiOkResponse({ description: 'Sessions list', type: SessionListDto })
  @ApiBadRequestResponse({ description: 'Validation error (e.g. limit above 100)', type: ErrorResponseDto })
  list(@CurrentPrincipal() principal: Principal, @Query() query: ListSessionsQueryDto): Promise<SessionListDto> {
    return this.query.list(principal, query);
  }

  @Post(':id/terminate')
  @HttpCode(200)
  @RequirePermissions(Permission.SESSIONS_WRITE)
  @InteractiveOnly()
  @ApiOperation({
    summary: 'Terminate session',
    description:
      "With a user login (not an API key). The session's owner, or an administrator (admin:sessions:write). Its access tokens are refused from the next " +
      'request on and its refresh token no longer works. Terminating an ended session answers 200 again.',
  })
  @ApiOkResponse({ description: 'Session terminated', type: TerminateSessionResponseDto })
  @ApiNotFoundResponse({ description: 'Resource not found (or not yours)', type: ErrorResponseDto })
  terminate(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @CurrentActor() client: Actor,
  ): Promise<TerminateSessionResponseDto> {
    return this.termination.terminate(principal, id, client);
  }
}
