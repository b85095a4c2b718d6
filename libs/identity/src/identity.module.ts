import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuthModule } from '@app/auth';
import { UsersModule } from '@app/users';
import { IdentityAccounts } from './identity-accounts.service';
import { IdentityLinkRepository } from './identity-link.repository';
import { IdentityProviders } from './identity-providers';
import { IdpBearerVerifier } from './idp-bearer.verifier';
import { IdentitySignIn } from './oidc/identity-sign-in.service';
import { InteractionIdpSignIn } from './oidc/interaction-sign-in';
import { OidcCallbackGuard } from './oidc/oidc-callback.guard';
import { OidcController } from './oidc/oidc.controller';
import { SignInStateCookie } from './oidc/oidc-state';
import { OidcStrategy } from './oidc/oidc.strategy';

/**
 * Enterprise identity providers (OpenID Connect): sign-in through them (a Passport strategy on
 * openid-client behind an @nestjs/passport guard), accounts linked by (issuer, subject) under
 * rules that cannot be abused to take one over, roles from their claims, and their access tokens
 * accepted as bearer credentials (a verifier registered with the Authenticator). Inert when no
 * provider is configured.
 */
@Module({
  imports: [PassportModule, AuthModule, UsersModule],
  controllers: [OidcController],
  providers: [
    IdentityProviders,
    IdentityLinkRepository,
    IdentityAccounts,
    IdentitySignIn,
    SignInStateCookie,
    OidcStrategy,
    OidcCallbackGuard,
    IdpBearerVerifier,
    InteractionIdpSignIn,
  ],
  exports: [IdentityProviders, InteractionIdpSignIn],
})
export class IdentityModule {}
