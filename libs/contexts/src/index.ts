// Lookups first: the tools module imports them while this library may still be loading.
export * from './contexts-error-codes';
export * from './context.entity';
export * from './context-settings';
export * from './context-access.service';
export * from './assert-tool-in-context';
export * from './context-access.module';
export * from './bounded-json';
export * from './dto/context.dto';
export * from './contexts.service';
export * from './contexts.module';
