import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ContextEntity } from './context.entity';
import { ContextAccessService } from './context-access.service';

/**
 * Context lookups for other modules (the tools pipeline, the MCP gateway). Separate from
 * ContextsModule, which needs the tool catalogue, so that importing this one from the tools
 * module makes no cycle.
 */
@Module({
  imports: [TypeOrmModule.forFeature([ContextEntity])],
  providers: [ContextAccessService],
  exports: [ContextAccessService],
})
export class ContextAccessModule {}
