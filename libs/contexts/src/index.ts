// Lookups first: the tools module imports them while this library may still be loading.
export * from './contexts-error-codes';
export * from './context';
export * from './context-settings';
export * from './context-access.service';
export { CONTEXTS_COLUMNS } from './context.repository';
export * from './assert-tool-in-context';
export * from './context-access.module';
export * from './bounded-json';
export * from './dto/context.dto';
export * from './contexts.service';
export * from './contexts.module';
