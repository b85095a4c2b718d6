import { Module } from '@nestjs/common';
import { ClusterSessionStateCache } from './cluster-session-state.cache';
import { HttpSessionActivityHook } from './http-session-activity.hook';
import { SessionActivityService } from './session-activity.service';
import { SessionQueryService } from './session-query.service';
import { SessionStateCache } from './session-state.cache';
import { SessionTerminationNotifier } from './session-termination.notifier';
import { SessionTerminationService } from './session-termination.service';
import { SessionRepository } from './session.repository';
import { SessionService } from './session.service';
import { SessionsController } from './sessions.controller';

@Module({
  controllers: [SessionsController],
  providers: [
    SessionRepository,
    SessionService,
    { provide: SessionStateCache, useClass: ClusterSessionStateCache },
    SessionActivityService,
    SessionTerminationNotifier,
    SessionQueryService,
    SessionTerminationService,
    HttpSessionActivityHook,
  ],
  exports: [SessionService, SessionStateCache, SessionActivityService, SessionTerminationNotifier],
})
export class SessionsModule {}
