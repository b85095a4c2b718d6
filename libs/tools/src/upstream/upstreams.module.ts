import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig, ConfigValidationError } from '@app/core';
import { HealthModule } from '@app/health';
import { ToolsModule } from '../tools.module';
import { TOOL_PROVIDERS } from '../tool-providers.token';
import { CatalogSync } from './catalog-sync';
import { CredentialCipher } from './credentials/credential-cipher';
import { OAuthFlowStore } from './credentials/oauth-flow-store';
import { UpstreamConnectPages } from './credentials/upstream-connect.pages';
import { UpstreamConnectionsPage } from './credentials/upstream-connections.page';
import { UpstreamOAuthClient } from './credentials/upstream-oauth-client';
import { OAUTH_UPSTREAMS, UpstreamOAuthService } from './credentials/upstream-oauth.service';
import { TokenExchanger } from './credentials/token-exchanger';
import { SharedExchangeCache } from './credentials/shared-exchange-cache';
import { UpstreamCredentialRepository } from './credentials/upstream-credential.repository';
import { CREDENTIAL_UPSTREAMS, UpstreamCredentialService } from './credentials/upstream-credential.service';
import { AdminUpstreamConnectionsController, UpstreamConnectionsController } from './credentials/upstream-connections.controller';
import { FederatedPromptsController } from './http/federated-prompts.controller';
import { FederatedResourcesController } from './http/federated-resources.controller';
import { UpstreamApprovalController } from './http/upstream-approval.controller';
import { UpstreamApprovalService } from './upstream-approval.service';
import { upstreamFeatureRequestsCounter } from './upstream-feature-metrics';
import { UpstreamFeatureService } from './upstream-features.service';
import { loadUpstreamsFile, UpstreamConfig } from './upstream-config';
import { UpstreamPinRepository } from './upstream-pin.repository';
import { UpstreamMetrics } from './upstream-metrics';
import { UpstreamPinStore } from './upstream-pin.store';
import { UPSTREAM_CONFIGS, UpstreamRegistry } from './upstream.registry';

/**
 * Federated upstream MCP servers: one tool provider per upstream declared in MCP_UPSTREAMS_FILE
 * (validated at boot: a bad file stops the server with every problem named), definition pinning
 * with admin approval, and their health; their prompts and resources also in REST (extension). Joins the catalogue through TOOL_PROVIDERS.
 */
@Module({
  imports: [ToolsModule, HealthModule],
  controllers: [
    UpstreamApprovalController,
    FederatedPromptsController,
    FederatedResourcesController,
    UpstreamConnectionsController,
    AdminUpstreamConnectionsController,
  ],
  providers: [
    {
      provide: UPSTREAM_CONFIGS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        checkedAgainstApp(loadUpstreamsFile(config.upstreams.file, config.secrets.upstreamSecrets), config),
    },
    UpstreamPinRepository,
    UpstreamPinStore,
    { provide: CREDENTIAL_UPSTREAMS, useExisting: UPSTREAM_CONFIGS },
    CredentialCipher,
    TokenExchanger,
    { provide: OAUTH_UPSTREAMS, useExisting: UPSTREAM_CONFIGS },
    UpstreamOAuthClient,
    OAuthFlowStore,
    UpstreamOAuthService,
    UpstreamConnectPages,
    UpstreamConnectionsPage,
    SharedExchangeCache,
    UpstreamCredentialRepository,
    UpstreamCredentialService,
    CatalogSync,
    UpstreamRegistry,
    UpstreamApprovalService,
    UpstreamFeatureService,
    upstreamFeatureRequestsCounter,
    UpstreamMetrics,
    { provide: TOOL_PROVIDERS, inject: [UpstreamRegistry], useFactory: (registry: UpstreamRegistry) => registry.all() },
  ],
  exports: [UpstreamRegistry, UpstreamFeatureService],
})
export class UpstreamsModule {}

/**
 * What the upstreams need of the rest of the configuration: `user-oauth` connects accounts in the
 * user's browser, signed in through the OAuth sign-in pages, so the authorization server must be on.
 */
function checkedAgainstApp(upstreams: UpstreamConfig[], config: AppConfig): UpstreamConfig[] {
  const problems = upstreams
    .filter((upstream) => upstream.auth.mode === 'user-oauth' && !config.oauth.enabled)
    .map(
      (upstream) =>
        `MCP_UPSTREAMS_FILE: upstream "${upstream.name}": auth.mode user-oauth needs the OAuth sign-in pages (OAUTH_ENABLED=true with OAUTH_ISSUER, the gateway's public origin), where users' browsers sign in to connect their accounts`,
    );
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return upstreams;
}
