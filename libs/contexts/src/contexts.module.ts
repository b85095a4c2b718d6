import { Module } from '@nestjs/common';
import { ToolsModule, UpstreamsModule } from '@app/tools';
import { ContextAccessModule } from './context-access.module';
import { ContextsController } from './contexts.controller';
import { ContextsService } from './contexts.service';

/**
 * The contexts API. Needs the tool catalogue (to check `tools`); the tools library does not
 * import this one (its edges get scopes through core's ExecutionScopeResolver).
 */
@Module({
  imports: [ContextAccessModule, ToolsModule, UpstreamsModule],
  controllers: [ContextsController],
  providers: [ContextsService],
  exports: [ContextAccessModule],
})
export class ContextsModule {}
