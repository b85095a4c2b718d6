import { Inject, Module, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AuthModule } from '@app/auth';
import {
  APP_CONFIG,
  AppConfig,
  BackgroundJob,
  BackgroundJobs,
  BearerTokenVerifiers,
  BrowserSignIns,
  Clock,
  InteractionSignIns,
} from '@app/core';
import { IdentityModule } from '@app/identity';
import { SessionsModule } from '@app/sessions';
import { UsersModule } from '@app/users';
import { OAuthClientsController } from './clients/oauth-clients.controller';
import { OAuthClientsService } from './clients/oauth-clients.service';
import { OAuthGrantRepository } from './grants/oauth-grant.repository';
import { AdminOAuthGrantsController, OAuthGrantsController } from './grants/oauth-grants.controller';
import { OAuthGrantsService } from './grants/oauth-grants.service';
import { OAuthBearerVerifier } from './oauth-bearer.verifier';
import { InteractionPages } from './pages/interaction-pages';
import { OAuthIssuer } from './provider/oauth-issuer';
import { OAuthProvider } from './provider/oauth-provider';
import { OAuthRoutes } from './provider/oauth-routes';
import { OAuthStoreRepository } from './store/oauth-store.repository';

/** How often expired codes, tokens and interactions are deleted. */
const SWEEP_MS = 10 * 60_000;

/**
 * The OAuth 2.1 authorization server of the MCP endpoints (see OAuthProvider), its sign-in and
 * consent pages, the verifier of its access tokens (plugged into the Authenticator every transport
 * calls), the user's grants (REST extension) and the admin's clients (REST extension).
 */
@Module({
  imports: [AuthModule, UsersModule, SessionsModule, IdentityModule],
  controllers: [OAuthGrantsController, AdminOAuthGrantsController, OAuthClientsController],
  providers: [
    OAuthStoreRepository,
    OAuthGrantRepository,
    OAuthGrantsService,
    OAuthClientsService,
    OAuthIssuer,
    OAuthProvider,
    OAuthRoutes,
    InteractionPages,
    OAuthBearerVerifier,
  ],
  exports: [OAuthIssuer],
})
export class OAuthModule implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private sweep: BackgroundJob | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly verifiers: BearerTokenVerifiers,
    private readonly verifier: OAuthBearerVerifier,
    private readonly jobs: BackgroundJobs,
    private readonly store: OAuthStoreRepository,
    private readonly clock: Clock,
    private readonly interactions: InteractionSignIns,
    private readonly pages: InteractionPages,
    private readonly browserSignIns: BrowserSignIns,
    private readonly provider: OAuthProvider,
  ) {}

  onModuleInit(): void {
    if (!this.config.oauth.enabled) return;
    this.verifiers.register(this.verifier);
    this.interactions.register(this.pages.pending);
    this.browserSignIns.register(this.provider.browserSignIn());
  }

  onApplicationBootstrap(): void {
    if (!this.config.oauth.enabled) return;
    this.sweep = this.jobs.every('oauth.store-sweep', SWEEP_MS, async () => {
      await this.store.deleteExpired(this.clock.now());
    });
  }

  onApplicationShutdown(): void {
    this.sweep?.stop();
    this.sweep = undefined;
  }
}
