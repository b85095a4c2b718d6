import { Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { APP_CONFIG, AppConfig } from '@app/core';

/**
 * The issuer identifier: OAUTH_ISSUER (the gateway's public origin) or, when unset outside
 * production, the address the server listens on (`http://127.0.0.1:3000`; a wildcard listen
 * address reads as localhost). Never taken from a request's Host header: a client must not be able
 * to choose the issuer it is told about (mix-up defence). Known once the server listens.
 */
@Injectable()
export class OAuthIssuer {
  private resolved: string | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    this.resolved = config.oauth.issuer;
  }

  /** The issuer, or undefined while the server does not listen yet (and no OAUTH_ISSUER is set). */
  get value(): string | undefined {
    if (this.resolved) return this.resolved;
    const fastify = this.adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
    const address = fastify?.server?.address() as AddressInfo | string | null | undefined;
    if (!address || typeof address === 'string') return undefined;
    const listen = this.config.http.host;
    const host = ['0.0.0.0', '::', '[::]', ''].includes(listen) ? 'localhost' : listen.includes(':') ? `[${listen}]` : listen;
    this.resolved = `http://${host}:${address.port}`;
    return this.resolved;
  }

  /** Host names the MCP endpoints answer to as resources: MCP_ALLOWED_HOSTS and the issuer's. */
  resourceHosts(): string[] {
    const hosts = new Set(this.config.mcp.allowedHosts.map((host) => host.toLowerCase()));
    const issuer = this.value;
    if (issuer) hosts.add(new URL(issuer).hostname.toLowerCase());
    return [...hosts];
  }
}
