// Lookups first: the tools module imports them while this library may still be loading.
export { ContextAccessService } from './context-access.service';
export { CONTEXTS_COLUMNS } from './context.repository';
export { assertToolInContext } from './assert-tool-in-context';
export { ContextAccessModule } from './context-access.module';
export { ContextsModule } from './contexts.module';
