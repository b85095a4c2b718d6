import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { SessionActivityService } from './session-activity.service';

/**
 * Counts REST traffic in the caller's session: each authenticated request is one message
 * received and its response one message sent; a response with an error status (4xx/5xx, e.g.
 * invalid tool parameters or a refused call) is one error. A Fastify hook rather than an
 * interceptor, so refusals by guards and pipes are seen too, at no per-route cost.
 *
 * Also flushes when Fastify closes: its onClose runs after in-flight requests have finished and
 * before Nest closes the database, so their counts are saved on a clean shutdown.
 */
@Injectable()
export class HttpSessionActivityHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly activity: SessionActivityService,
  ) {}

  onModuleInit(): void {
    // Absent in application contexts without HTTP (the CLI).
    const fastify = this.adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
    if (!fastify?.addHook) return;
    fastify.addHook('onResponse', (request, reply, done) => {
      const sessionId = request.principal?.sessionId;
      if (sessionId) this.activity.count(sessionId, { received: 1, sent: 1, errors: reply.statusCode >= 400 ? 1 : 0 });
      done();
    });
    fastify.addHook('onClose', async () => {
      await this.activity.flush();
    });
  }
}
