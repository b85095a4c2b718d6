import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AppConfig, ErrorResponseDto, PaginationDto } from '@app/core';

export const API_PREFIX = 'api/v1';

/**
 * The OpenAPI document is generated from the controllers' decorators and laid out like the
 * contract: paths without the prefix, the prefix as the server URL, bearer auth by default
 * and `security: []` on public routes.
 */
export function buildOpenApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Secure MCP Server API')
    .setDescription('Enterprise-grade Model Context Protocol server with advanced security and scalability')
    .setVersion(config.version)
    .setLicense('Apache 2.0', 'https://www.apache.org/licenses/LICENSE-2.0.html')
    .addServer(`/${API_PREFIX}`, 'This server')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'BearerAuth')
    .addSecurityRequirements('BearerAuth')
    .addTag('Authentication', 'User authentication and authorization')
    .addTag('Tools', 'MCP tool operations')
    .addTag('Contexts', 'Context management')
    .addTag('Sessions', 'Session management')
    .addTag('Admin', 'Administrative operations')
    .addTag('Health', 'Health and monitoring endpoints');
  const document = SwaggerModule.createDocument(app, builder.build(), {
    ignoreGlobalPrefix: true,
    extraModels: [ErrorResponseDto, PaginationDto],
  });
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as Array<Record<string, unknown>>) {
      if (!operation || typeof operation !== 'object') continue;
      if ('x-public' in operation) {
        operation.security = [];
        delete operation['x-public'];
      } else if (Array.isArray(operation.security)) {
        // Several access decorators on one route each declare BearerAuth: list it once.
        operation.security = [...new Map(operation.security.map((s) => [JSON.stringify(s), s])).values()];
      }
    }
  }
  return document;
}

/** The document is built on the first request for it: scanning every controller slowed every start. */
export function setupSwagger(app: NestFastifyApplication, config: AppConfig): void {
  SwaggerModule.setup('api/docs', app, () => buildOpenApiDocument(app, config), {
    useGlobalPrefix: false,
    jsonDocumentUrl: 'api/docs-json',
    yamlDocumentUrl: 'api/docs-yaml',
    customSiteTitle: 'Secure MCP Server API',
    swaggerOptions: { persistAuthorization: true },
  });
}
