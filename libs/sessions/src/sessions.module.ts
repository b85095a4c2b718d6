import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { RefreshTokenEntity, SessionEntity } from './session.entity';
import { InMemorySessionStateCache, SessionStateCache } from './session-state.cache';
import { SessionService } from './session.service';

@Module({
  imports: [TypeOrmModule.forFeature([SessionEntity, RefreshTokenEntity])],
  providers: [SessionService, { provide: SessionStateCache, useClass: InMemorySessionStateCache }],
  exports: [SessionService, SessionStateCache],
})
export class SessionsModule {}
