import { PassportModule } from '@nestjs/passport';
import { Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, AppConfig, BackgroundJobs } from '@app/core';
import { RedisConnection } from '@app/redis';
import { SessionsModule } from '@app/sessions';
import { UsersModule } from '@app/users';
import { ApiKeyRepository } from './api-keys/api-key.repository';
import { ApiKeyService } from './api-keys/api-key.service';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { Authenticator } from './edge/authenticator';
import { RequestRateLimiter } from './edge/request-rate-limiter';
import { AuthenticationGuard } from './guards/authentication.guard';
import { InMemoryThrottlerStorage } from './guards/in-memory-throttler.storage';
import { RateLimitGuard } from './guards/rate-limit.guard';
import { RedisThrottlerStorage } from './guards/redis-throttler.storage';
import { RouteAccessCheck } from './guards/route-access.check';
import { MfaModule } from './mfa/mfa.module';
import { PasswordChangeService } from './password/password-change.service';
import { PasswordService } from './password/password.service';
import { AccessTokenService } from './tokens/access-token.service';
import { RefreshTokenRepository } from './tokens/refresh-token.repository';
import { RefreshTokenService } from './tokens/refresh-token.service';
import { PasswordStrategy } from './login/password.strategy';

/**
 * Accounts, tokens and the two global guards. Guard order matters and is fixed here: first
 * authentication (deny by default, sets the principal), then rate limiting (keyed by that
 * principal, or by client IP on public routes). Both decisions are services (Authenticator,
 * RequestRateLimiter) that the MCP transports call too: one edge for every transport.
 */
@Module({
  imports: [
    DiscoveryModule,
    PassportModule,
    UsersModule,
    SessionsModule,
    MfaModule,
    // RateLimitGuard picks limit and window per route; this entry only names the throttler.
    // With REDIS_URL the counts live in Redis, shared by every replica.
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG, RedisConnection, BackgroundJobs],
      useFactory: (config: AppConfig, redis: RedisConnection, jobs: BackgroundJobs) => ({
        throttlers: [{ name: 'default', limit: config.auth.defaultRateLimit, ttl: config.auth.defaultRateWindowSec * 1000 }],
        storage: redis.enabled ? new RedisThrottlerStorage(redis, jobs) : new InMemoryThrottlerStorage(jobs),
      }),
    }),
  ],
  controllers: [AuthController, ApiKeysController],
  providers: [
    AuthService,
    PasswordStrategy,
    PasswordService,
    PasswordChangeService,
    AccessTokenService,
    RefreshTokenService,
    RefreshTokenRepository,
    ApiKeyService,
    ApiKeyRepository,
    Authenticator,
    RequestRateLimiter,
    AuthenticationGuard,
    RouteAccessCheck,
    { provide: APP_GUARD, useExisting: AuthenticationGuard },
    { provide: APP_GUARD, useClass: RateLimitGuard },
  ],
  exports: [AuthService, PasswordService, AccessTokenService, ApiKeyService, Authenticator, RequestRateLimiter],
})
export class AuthModule {}
