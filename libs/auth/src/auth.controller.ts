import { Body, Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  Actor,
  actorOf,
  Authenticated,
  CurrentActor,
  CurrentPrincipal,
  ErrorResponseDto,
  InteractiveOnly,
  Principal,
  Public,
  SignedInActor,
} from '@app/core';
import { UserDto } from '@app/users';
import { AuthService } from './auth.service';
import { AuthRateLimit } from './decorators/auth-rate-limit.decorator';
import { NoStore } from './decorators/no-store.decorator';
import { RefreshTokenAuth } from './decorators/refresh-token-auth.decorator';
import { ChangePasswordDto } from './dto/change-password.dto';
import { ChangePasswordResponseDto } from './dto/change-password-response.dto';
import { LoginDto } from './dto/login.dto';
import { LoginResponseDto } from './dto/login-response.dto';
import { LogoutResponseDto } from './dto/logout-response.dto';
import { RefreshResponseDto } from './dto/refresh-response.dto';
import { RegisterDto } from './dto/register.dto';
import { PasswordChangeService } from './password/password-change.service';
import { bearerToken } from './tokens/bearer-token';
import { PasswordLoginGuard, PasswordSignedIn } from './login/password.strategy';

const IDP_REQUIRED_DESCRIPTION =
  'IDP_SIGN_IN_REQUIRED: accounts of this email domain sign in through an enterprise identity provider (GET /auth/oidc/{provider})';

@ApiTags('Authentication')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly passwordChange: PasswordChangeService,
  ) {}

  @Post('register')
  @Public()
  @AuthRateLimit()
  @ApiOperation({ summary: 'Register new user' })
  @ApiCreatedResponse({ description: 'User created successfully', type: UserDto })
  @ApiBadRequestResponse({ description: 'Validation error', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'User already exists', type: ErrorResponseDto })
  @ApiForbiddenResponse({ description: IDP_REQUIRED_DESCRIPTION, type: ErrorResponseDto })
  register(@Body() dto: RegisterDto, @CurrentActor() client: Actor): Promise<UserDto> {
    return this.auth.register(dto, client);
  }

  @Post('login')
  @HttpCode(200)
  @Public()
  @AuthRateLimit()
  @NoStore()
  @ApiOperation({ summary: 'Login user' })
  @ApiOkResponse({ description: 'Login successful', type: LoginResponseDto })
  @ApiUnauthorizedResponse({
    description: 'Invalid credentials (UNAUTHORIZED), or MFA_REQUIRED when the account needs its code',
    type: ErrorResponseDto,
  })
  @ApiForbiddenResponse({ description: IDP_REQUIRED_DESCRIPTION, type: ErrorResponseDto })
  @UseGuards(PasswordLoginGuard)
  // The 'password' Passport strategy signed the caller in (PasswordStrategy); the body is declared for the contract.
  login(@Body() _dto: LoginDto, @Req() request: PasswordSignedIn): LoginResponseDto {
    return request.user!;
  }

  @Post('refresh')
  @HttpCode(200)
  @RefreshTokenAuth()
  @AuthRateLimit()
  @NoStore()
  @ApiOperation({ summary: 'Refresh access token', description: 'The bearer credential is the refresh token; it is rotated.' })
  @ApiOkResponse({ description: 'Token refreshed successfully', type: RefreshResponseDto })
  refresh(@Req() request: FastifyRequest): Promise<RefreshResponseDto> {
    return this.auth.refresh(bearerToken(request), actorOf(request));
  }

  @Post('logout')
  @HttpCode(200)
  @InteractiveOnly()
  @ApiOperation({ summary: 'Logout user' })
  @ApiOkResponse({ description: 'Logout successful', type: LogoutResponseDto })
  @ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto })
  logout(@CurrentPrincipal() principal: Principal, @CurrentActor() client: Actor): Promise<LogoutResponseDto> {
    return this.auth.logout(principal, client);
  }

  @Post('password')
  @HttpCode(200)
  @AuthRateLimit()
  @InteractiveOnly()
  @ApiOperation({
    summary: 'Change your password (extension)',
    description:
      'Needs the current password; the new one must meet the registration policy and differ from it. ' +
      'Ends every other session of the account (other logins, and the sessions of your API keys, which ' +
      'open a new one on their next use); this session stays. Wrong current passwords count toward the ' +
      'login lockout; while the account is locked the answer is 429 ACCOUNT_LOCKED with Retry-After. ' +
      'Only with a user login: API keys are refused (403).',
  })
  @ApiOkResponse({ description: 'Password changed', type: ChangePasswordResponseDto })
  @ApiBadRequestResponse({
    description:
      'VALIDATION_ERROR (details name newPassword or currentPassword: policy, same as current, missing), ' +
      'or INVALID_CURRENT_PASSWORD (details: currentPassword)',
    type: ErrorResponseDto,
  })
  @ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto })
  @ApiForbiddenResponse({ description: 'Called with an API key: credentials are managed with a user login', type: ErrorResponseDto })
  @ApiConflictResponse({ description: 'The password was changed by a concurrent request', type: ErrorResponseDto })
  changePassword(@Body() dto: ChangePasswordDto, @CurrentActor() client: SignedInActor): Promise<ChangePasswordResponseDto> {
    return this.passwordChange.change(client, dto.currentPassword, dto.newPassword);
  }

  @Get('me')
  @Authenticated()
  @ApiOperation({ summary: 'The current user (extension)' })
  @ApiOkResponse({ description: 'The authenticated user', type: UserDto })
  @ApiUnauthorizedResponse({ description: 'Authentication required', type: ErrorResponseDto })
  me(@CurrentPrincipal() principal: Principal): Promise<UserDto> {
    return this.auth.me(principal);
  }
}
