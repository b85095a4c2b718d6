import { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyInstance, LogController } from 'fastify';
import { mkdirSync } from 'node:fs';
import { Logger } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import {
  AllExceptionsFilter,
  AppConfig,
  correlate,
  Correlation,
  RouteRegistry,
  createRootLogger,
  createValidationPipe,
  lazyChildLogger,
  requestIdFor,
  requestLineWriter,
  traceIdFor,
} from '@app/core';
import { HttpMetricsService } from '@app/health';
import { correlationMixin, installHttpTracing, tracing, TracingHandle } from '@app/telemetry';
import { McpWsAdapter } from '@app/mcp-gateway';
import { AppModule } from './app.module';
import { clientErrorHandler, frameworkErrorHandler, installInputChecks, installJsonParser, refuseConnectMethod } from './request-input';
import { HttpConnections, httpServerOptions } from './http-connections';
import { JsonNestLogger } from './json-nest-logger';
import { installRouterFastPath } from './router-fast-path';
import { installBodyParserFastPath } from './body-parser-fast-path';
import { installSecurityHeaders } from './security-headers';
import { API_PREFIX, setupSwagger } from './swagger';

/** Probes and scrapes are not worth a log line each. */
const UNLOGGED_ROUTES = new Set([`/${API_PREFIX}/health`, `/${API_PREFIX}/ready`, `/${API_PREFIX}/metrics`]);

/**
 * Builds the fully configured application (used by main.ts and by the end-to-end tests, so
 * the tests exercise exactly what production runs). The caller listens and closes.
 */
export interface CreateAppOptions {
  /** Extra modules to compose in (the end-to-end suites add probe controllers). */
  extraModules?: Array<Type | DynamicModule>;
  /** The tracer provider main.ts started (startTracing), flushed when the app closes; null: tracing off. */
  tracing?: TracingHandle | null;
}

export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  // Guards and parameter pipes that answer at once are not awaited (Nest's router otherwise awaits each).
  installRouterFastPath();
  // A request's body parser finishes in the request's async context without Node 20's costly AsyncResource.bind.
  installBodyParserFastPath();
  // While tracing runs (it has its AsyncLocalStorage anyway), every line in a request's trace
  // context carries the request's correlation, also lines of code without a scope at hand.
  const logger = createRootLogger(config, { mixin: tracing.tracer ? correlationMixin() : undefined, bufferLines: true });
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if (!config.database.url) throw error;
  }
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // Our own onResponse hook writes the one request line (see installRequestLog).
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIdFor,
    childLoggerFactory: lazyChildLogger,
    bodyLimit: config.http.bodyLimit,
    trustProxy: config.http.trustProxy,
    // While closing, a request that arrives on a kept-alive connection is still served (with
    // `Connection: close`) instead of Fastify's own 503 body: the app is whole until the drain ends.
    return503OnClosing: false,
    // No Nest middleware is used (see AppModule's LoggerModule): hooks do that work without middie.
    skipMiddie: true,
    // Answers written before Nest's filter can run still carry the contract's Error body.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // Header, request and keep-alive deadlines (slow clients); see http-connections.ts.
    ...httpServerOptions(config.http),
  });
  const fastify = adapter.getInstance() as unknown as FastifyInstance;
  HttpConnections.attach(fastify.server);
  const routes = new RouteRegistry();
  routes.attach(fastify);
  installRequestContext(fastify);
  installHttpTracing(fastify, { untracedRoutes: UNLOGGED_ROUTES });
  installJsonParser(fastify);
  installInputChecks(fastify);
  refuseConnectMethod(fastify.server);

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, logger, options.extraModules, options.tracing ?? null),
    adapter,
    {
      bufferLogs: true,
      // Until useLogger below (and when the boot fails before it): JSON through the root logger.
      logger: new JsonNestLogger(logger),
      abortOnError: false,
      // JSON only, through installJsonParser; anything else is a 415.
      bodyParser: false,
    },
  );
  app.useLogger(app.get(Logger));
  app.flushLogs();
  app.setGlobalPrefix(API_PREFIX);
  app.useGlobalFilters(new AllExceptionsFilter(routes));
  app.useGlobalPipes(createValidationPipe());
  // MCP over WebSocket shares the HTTP server; the adapter routes upgrades by path template.
  app.useWebSocketAdapter(new McpWsAdapter(app));

  installSecurityHeaders(fastify, {
    // Swagger UI is the only HTML we serve; it needs inline styles and data: images.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
        scriptSrc: ["'self'"],
        // Plain-HTTP deployments (behind a TLS-terminating proxy or on localhost) must still load the UI.
        upgradeInsecureRequests: null,
      },
    },
  });
  if (config.http.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.http.corsOrigins.includes('*') ? '*' : config.http.corsOrigins,
      credentials: config.http.corsCredentials,
      exposedHeaders: ['X-Request-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'],
      maxAge: 600,
    });
  }

  app.get(HttpMetricsService).attach(fastify);
  installRequestLog(fastify, logger);
  setupSwagger(app, config);
  await app.init();
  return app;
}

function installRequestContext(fastify: FastifyInstance): void {
  fastify.decorateRequest('traceId', '');
  // Set by the hook below on every request (null only as Fastify's placeholder for a reference type).
  fastify.decorateRequest('correlation', null as unknown as Correlation);
  fastify.addHook('onRequest', (request, reply, done) => {
    request.traceId = traceIdFor(request.headers.traceparent);
    // Tracing (installHttpTracing, the next hook) replaces the trace id with its span's; the edge adds the caller.
    request.correlation = { reqId: request.id, traceId: request.traceId };
    reply.header('x-request-id', request.id);
    done();
  });
}

/**
 * One line per request, without query strings (they may carry tickets) and without probes. The
 * line's fields are fixed and carry no secret, so it skips the redaction pass: with our wildcard
 * paths that pass cost about ten times the rest of the line. requestLineWriter writes the line
 * pino would, from the fields directly.
 */
function installRequestLog(fastify: FastifyInstance, logger: PinoLogger): void {
  const write = requestLineWriter(logger.child({}, { redact: [] }));
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    if (route && UNLOGGED_ROUTES.has(route)) return done();
    const correlation = correlate(request, request.principal);
    write({
      reqId: correlation.reqId,
      traceId: correlation.traceId,
      userId: correlation.userId,
      sessionId: correlation.sessionId,
      method: request.method,
      route: route ?? null,
      path: pathOf(request.url),
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
    });
    done();
  });
}

/** A request target without its query string. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
