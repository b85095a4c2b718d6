export type { ConnectionType, Session, SessionStatus } from './session.repository';
export * from './session-state.cache';
export * from './cluster-session-state.cache';
export * from './session.service';
export * from './session-activity.service';
export * from './session-termination.notifier';
export * from './session-termination.service';
export * from './dto/session.dto';
export * from './sessions.module';
