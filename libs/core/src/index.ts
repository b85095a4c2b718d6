export { ConfigValidationError, loadConfig } from './config/app-config';
export type { AppConfig } from './config/app-config';
export type { IdentityProviderConfig } from './config/identity-config';
export { APP_CONFIG } from './config/config.tokens';
export { Clock } from './clock/clock';
export { CoreModule } from './core.module';
export { ErrorCode, codeForStatus } from './errors/error-code';
export type { ErrorCodeValue } from './errors/error-code';
export { AppException } from './errors/app.exception';
export type { ErrorDetail } from './errors/app.exception';
export { isDatabaseUnavailable } from './errors/database-errors';
export { ErrorResponseDto } from './errors/error-response.dto';
export { AllExceptionsFilter, errorBody } from './errors/all-exceptions.filter';
export { newRequestId, requestIdFor, traceIdFor } from './http/request-context';
export { RouteRegistry } from './http/route-registry';
export { createRootLogger, lazyChildLogger } from './logging/logger';
export { requestLineWriter } from './logging/request-line';
export { correlate } from './logging/correlation';
export type { Correlation } from './logging/correlation';
export { safeErrorMessage, serializeError } from './logging/error-serializer';
export { createValidationPipe } from './validation/validation.pipe';
export { parseJsonInput, unsafeStrings } from './validation/json-input';
export type { JsonInputResult } from './validation/json-input';
export { PaginationDto, PaginationQueryDto, pageOffset, paginationOf } from './pagination/pagination';
export { IS_PUBLIC_KEY, Public } from './http/public.decorator';
export { CurrentPrincipal, IDP_SUBJECT_TOKEN, ROLES } from './auth/principal';
export type { Principal, Role } from './auth/principal';
export {
  ACCESS_DECLARED_KEY,
  Authenticated,
  DeclaresAccess,
  INTERACTIVE_ONLY_KEY,
  InteractiveOnly,
  REQUIRED_PERMISSIONS_KEY,
  REQUIRED_ROLES_KEY,
  RequirePermissions,
  Roles,
} from './auth/access.decorators';
export { PERMISSION_PATTERN, Permission, apiKeyPermissions, holdsAll, resolvePermissions } from './auth/permissions';
export { newId } from './http/ids';
export { clientInfo } from './http/client-info';
export { WorkLimit } from './concurrency/work-limit';
export { withTimeout } from './concurrency/with-timeout';
export { DEVELOPMENT_SECRETS_FILE, persistGeneratedSecrets } from './config/development-secrets';
export { ExecutionScopeResolver, ScopeErrorCode, assertToolInContext } from './auth/execution-scope';
export type { ExecutionScope, ScopeContext } from './auth/execution-scope';
export { RATE_WINDOW_PATTERN, rateWindowMs } from './rate-limit/rate-window';
export { CurrentActor, actorOf, userAgentOf } from './auth/actor';
export type { Actor, SignedInActor } from './auth/actor';
export { BackgroundJobs } from './jobs/background-jobs';
export type { BackgroundJob } from './jobs/background-jobs';
export { BearerTokenVerifiers } from './auth/bearer-verifiers';
export type { BearerTokenVerifier, BearerUse, ExternalBearerIdentity } from './auth/bearer-verifiers';
export { InteractionSignIns } from './auth/interaction-sign-ins';
export type { PendingInteractions } from './auth/interaction-sign-ins';
export { alert, escapeHtml, page, PAGE_CSP } from './http/html-page';
export { BrowserSignIns, PAGES_CLIENT_ID, PAGES_SIGNED_IN_PATH } from './auth/browser-sign-ins';
export type { BrowserSignIn } from './auth/browser-sign-ins';
