import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Principal } from './principal';

/**
 * Who did it and where they came from: what services record in sessions, audit records and
 * execution rows. One shape for REST, MCP HTTP and MCP WebSocket callers.
 */
export interface Actor {
  /** The authenticated caller; absent on public routes (register, login, refresh). */
  principal?: Principal;
  /** Client address (Fastify applies TRUST_PROXY, so X-Forwarded-For counts only when configured). */
  ipAddress: string | null;
  /** The User-Agent header, at most 512 characters. */
  userAgent: string | null;
  /** The request this happened in, when there is one. */
  requestId?: string;
}

/** An actor known to be signed in (the routes behind the global guard). */
export type SignedInActor = Actor & { principal: Principal };

const MAX_USER_AGENT = 512;

/** The User-Agent header as recorded everywhere: a string cut at 512 characters, or null. */
export function userAgentOf(header: string | string[] | undefined): string | null {
  return typeof header === 'string' ? header.slice(0, MAX_USER_AGENT) : null;
}

/** The actor of a Fastify request (its principal, if the guard set one). */
export function actorOf(request: FastifyRequest): Actor {
  return {
    principal: request.principal,
    ipAddress: request.ip,
    userAgent: userAgentOf(request.headers['user-agent']),
    requestId: request.id,
  };
}

/** The caller of this request and where they came from (`principal` is set on every non-public route). */
export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor =>
  actorOf(ctx.switchToHttp().getRequest<FastifyRequest>()),
);
