import { Global, Module } from '@nestjs/common';
import { ExecutionScopeResolver } from '@app/core';
import { ContextAccessService } from './context-access.service';
import { ContextRepository } from './context.repository';

/**
 * Context lookups for other modules, and the ExecutionScopeResolver (core's port) every edge
 * injects: global, so the tools library resolves scopes without importing this one (no cycle:
 * ContextsModule needs the tool catalogue).
 */
@Global()
@Module({
  providers: [ContextRepository, ContextAccessService, { provide: ExecutionScopeResolver, useExisting: ContextAccessService }],
  exports: [ContextRepository, ContextAccessService, ExecutionScopeResolver],
})
export class ContextAccessModule {}
