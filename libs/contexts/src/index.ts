// Lookups first: the tools module imports them while this library may still be loading.
export { ContextAccessService } from './context-access.service';
export { CONTEXTS_COLUMNS } from './context.repository';
export { ContextsModule } from './contexts.module';
export { ContextsErrorCode } from './contexts-error-codes';
