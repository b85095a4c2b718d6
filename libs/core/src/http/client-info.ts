import type { FastifyRequest } from 'fastify';

/** Client address (Fastify applies TRUST_PROXY, so X-Forwarded-For counts only when configured) and agent. */
export function clientInfo(request: FastifyRequest): { ipAddress: string; userAgent: string | null } {
  const agent = request.headers['user-agent'];
  return { ipAddress: request.ip, userAgent: typeof agent === 'string' ? agent.slice(0, 512) : null };
}
