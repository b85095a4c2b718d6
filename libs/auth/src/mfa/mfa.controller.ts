import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Actor, AppException, CurrentActor, ErrorResponseDto, InteractiveOnly } from '@app/core';
import { EnableMfaDto } from './dto/enable-mfa.dto';
import { EnableMfaResponseDto, VerifyMfaResponseDto } from './dto/mfa-responses.dto';
import { VerifyMfaDto } from './dto/verify-mfa.dto';
import { MfaCaller, MfaService } from './mfa.service';
import { NoStore } from '../decorators/no-store.decorator';

/** MFA is managed by the signed-in user for their own account, with a user login (never an API key). */
@ApiTags('Authentication')
@InteractiveOnly()
@ApiUnauthorizedResponse({ description: 'Authentication required, or a wrong MFA code', type: ErrorResponseDto })
@Controller('auth/mfa')
export class MfaController {
  constructor(private readonly mfa: MfaService) {}

  @Post('enable')
  @HttpCode(200)
  @NoStore()
  @ApiOperation({
    summary: 'Enable MFA',
    description:
      'Starts a TOTP or SMS enrollment; it becomes active once POST /auth/mfa/verify succeeds. ' +
      'The secret, QR code and backup codes are shown only in this answer. Replacing an active factor ' +
      'needs `currentCode` (409 MFA_ALREADY_ENABLED without it).',
  })
  @ApiOkResponse({ description: 'MFA enabled', type: EnableMfaResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid request parameters (e.g. phoneNumber not E.164)', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'MFA is already enabled and no valid currentCode was given', type: ErrorResponseDto })
  @ApiServiceUnavailableResponse({ description: 'The SMS could not be sent', type: ErrorResponseDto })
  enable(@CurrentActor() client: Actor, @Body() body: EnableMfaDto): Promise<EnableMfaResponseDto> {
    return this.mfa.enable(callerOf(client), {
      type: body.type,
      phoneNumber: body.type === 'sms' ? body.phoneNumber : undefined,
      currentCode: body.currentCode,
    });
  }

  @Post('verify')
  @HttpCode(200)
  @NoStore()
  @ApiOperation({
    summary: 'Verify MFA code',
    description: 'Verifies the pending enrollment (activating it and ending your other sessions) or, without one, the active factor.',
  })
  @ApiOkResponse({ description: 'MFA verified', type: VerifyMfaResponseDto })
  @ApiBadRequestResponse({ description: 'Invalid request, or nothing of that type to verify', type: ErrorResponseDto })
  verify(@CurrentActor() client: Actor, @Body() body: VerifyMfaDto): Promise<VerifyMfaResponseDto> {
    return this.mfa.verify(callerOf(client), body.type, body.code);
  }
}

function callerOf(client: Actor): MfaCaller {
  // The global guard guarantees a principal; fail closed should it ever be missing.
  if (!client.principal) throw AppException.unauthorized();
  return { ...client, principal: client.principal };
}
