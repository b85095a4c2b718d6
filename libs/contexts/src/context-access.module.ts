import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ExecutionScopeResolver } from '@app/core';
import { ContextEntity } from './context.entity';
import { ContextAccessService } from './context-access.service';

/**
 * Context lookups for other modules, and the ExecutionScopeResolver (core's port) every edge
 * injects: global, so the tools library resolves scopes without importing this one (no cycle:
 * ContextsModule needs the tool catalogue).
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([ContextEntity])],
  providers: [ContextAccessService, { provide: ExecutionScopeResolver, useExisting: ContextAccessService }],
  exports: [ContextAccessService, ExecutionScopeResolver],
})
export class ContextAccessModule {}
