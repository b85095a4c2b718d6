import { Module } from '@nestjs/common';
import { ContextAccessService } from './context-access.service';
import { ContextRepository } from './context.repository';

/**
 * Context lookups for other modules (the tools pipeline, the MCP gateway). Separate from
 * ContextsModule, which needs the tool catalogue, so that importing this one from the tools
 * module makes no cycle.
 */
@Module({
  providers: [ContextRepository, ContextAccessService],
  exports: [ContextRepository, ContextAccessService],
})
export class ContextAccessModule {}
