import { Controller, Get, Param, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiForbiddenResponse,
  ApiFoundResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProperty,
  ApiSeeOtherResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthRateLimit, LoginResponseDto } from '@app/auth';
import { ErrorResponseDto, Public } from '@app/core';
import { IdentityProviders } from '../identity-providers';
import { IdentitySignIn } from './identity-sign-in.service';
import { OidcCallbackGuard } from './oidc-callback.guard';
import { InteractionSignInFailureFilter } from './interaction-sign-in';
import { InteractionContinuation, OidcStrategy } from './oidc.strategy';

class IdentityProviderDto {
  @ApiProperty({ example: 'corp' }) name: string;
  @ApiProperty({ example: 'Corp SSO' }) displayName: string;
  @ApiProperty({ example: '/api/v1/auth/oidc/corp', description: 'Open in a browser to sign in' }) signInPath: string;
}

class IdentityProviderListDto {
  @ApiProperty({ type: [IdentityProviderDto] }) providers: IdentityProviderDto[];
}

const PROVIDER = { name: 'provider', description: 'The identity provider’s configured name (IDP_PROVIDERS)', example: 'corp' };

/**
 * Sign-in through an enterprise identity provider for REST clients and browsers (extension): open
 * the first URL in a browser; the IdP sends it back to the second, which answers exactly like
 * POST /auth/login.
 */
@ApiTags('Authentication')
@Controller('auth/oidc')
export class OidcController {
  constructor(
    private readonly providers: IdentityProviders,
    private readonly strategy: OidcStrategy,
    private readonly signIn: IdentitySignIn,
  ) {}

  @Get()
  @Public()
  @ApiOperation({
    summary: 'The enterprise identity providers you can sign in through (extension)',
    description: 'For a sign-in page or a client: each provider’s name, display name and the URL that starts its sign-in.',
  })
  @ApiOkResponse({ description: 'The providers configured for sign-in (none: an empty list)', type: IdentityProviderListDto })
  list(): IdentityProviderListDto {
    return {
      providers: this.providers.all
        .filter((provider) => provider.clientId !== undefined)
        .map((provider) => ({ name: provider.name, displayName: provider.displayName, signInPath: `/api/v1/auth/oidc/${provider.name}` })),
    };
  }

  @Get(':provider')
  @Public()
  @AuthRateLimit()
  @ApiOperation({
    summary: 'Sign in through an enterprise identity provider (extension)',
    description:
      'Open in a browser (not with fetch: it leaves this origin). Redirects to the IdP with an authorization-code ' +
      'request (PKCE S256, state, nonce) and sets a short-lived, encrypted, HttpOnly cookie holding that state for the ' +
      'callback. After signing in there, the browser lands on GET /auth/oidc/{provider}/callback, which answers with ' +
      'our tokens as JSON.',
  })
  @ApiParam(PROVIDER)
  @ApiFoundResponse({ description: 'Redirect to the identity provider (Location header)' })
  @ApiNotFoundResponse({ description: 'IDP_UNKNOWN_PROVIDER: no such provider configured for sign-in', type: ErrorResponseDto })
  @ApiServiceUnavailableResponse({ description: 'IDP_UNAVAILABLE: the identity provider cannot be reached', type: ErrorResponseDto })
  async start(@Param('provider') name: string, @Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const provider = this.providers.forSignIn(name);
    const url = await this.signIn.start(provider, await this.strategy.forProvider(provider), request, reply);
    await reply.header('cache-control', 'no-store').redirect(url, 302);
  }

  @Get(':provider/callback')
  @Public()
  @AuthRateLimit()
  @UseGuards(OidcCallbackGuard)
  @UseFilters(InteractionSignInFailureFilter)
  @ApiOperation({
    summary: 'Complete a sign-in through an enterprise identity provider (extension)',
    description:
      'The redirect URI to register at the IdP. Checks the authorization response with openid-client (state from the ' +
      'cookie, `iss`, PKCE, the ID token), finds the account by the IdP identity (issuer + subject), links or creates ' +
      'it under the linking rules, re-evaluates its roles from the claims, and answers exactly like POST /auth/login ' +
      '(a session, a refresh token, an auth.login audit record). A sign-in started on the OAuth sign-in page ' +
      '("Sign in with <provider>") instead finishes that page\'s sign-in and sends the browser on to consent (303); ' +
      "its refusals are the sign-in pages' HTML error page.",
  })
  @ApiParam(PROVIDER)
  @ApiOkResponse({ description: 'Signed in: our access and refresh tokens', type: LoginResponseDto })
  @ApiSeeOtherResponse({ description: 'A sign-in of the OAuth sign-in page: continue the authorization (Location header)' })
  @ApiUnauthorizedResponse({
    description: 'IDP_SIGN_IN_FAILED: no or stale sign-in state, or the IdP’s answer failed its checks',
    type: ErrorResponseDto,
  })
  @ApiForbiddenResponse({ description: 'IDP_EMAIL_NOT_ACCEPTED, IDP_NO_ACCOUNT or IDP_ACCOUNT_INACTIVE', type: ErrorResponseDto })
  @ApiConflictResponse({
    description: 'IDP_LINK_REFUSED (an account with this email exists and the IdP’s assertion cannot link it) or IDP_ALREADY_LINKED',
    type: ErrorResponseDto,
  })
  @ApiNotFoundResponse({ description: 'IDP_UNKNOWN_PROVIDER', type: ErrorResponseDto })
  async callback(
    @Req() request: FastifyRequest & { user?: LoginResponseDto | InteractionContinuation },
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const outcome = request.user!;
    void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    if ('continueAt' in outcome) return void (await reply.code(303).header('location', outcome.continueAt).send());
    await reply.code(200).send(outcome);
  }
}
