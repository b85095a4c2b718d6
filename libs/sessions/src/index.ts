export * from './session.entity';
export * from './session-state.cache';
export * from './session.service';
export * from './sessions.module';
