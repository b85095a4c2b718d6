export { SESSION_TABLE_COLUMNS } from './session.repository';
export type { ConnectionType } from './session.repository';
export { SessionService } from './session.service';
export { SessionActivityService } from './session-activity.service';
export { SessionTerminationNotifier } from './session-termination.notifier';
export type { SessionTerminatedEvent } from './session-termination.notifier';
export { SessionsModule } from './sessions.module';
