import { forwardRef, Module } from '@nestjs/common';
import { ToolsModule } from '@app/tools';
import { ContextAccessModule } from './context-access.module';
import { ContextsController } from './contexts.controller';
import { ContextsService } from './contexts.service';

/**
 * The contexts API. Needs the tool catalogue (to check `tools`); the tools module, in turn, uses
 * ContextAccessModule, so the import is a forwardRef that survives either load order.
 */
@Module({
  imports: [ContextAccessModule, forwardRef(() => ToolsModule)],
  controllers: [ContextsController],
  providers: [ContextsService],
  exports: [ContextAccessModule],
})
export class ContextsModule {}
