import { Module } from '@nestjs/common';
import { ClusterEventBus } from '@app/redis';
import { ClusterUserStateCache } from './cluster-user-state.cache';
import { UserStateCache } from './user-state.cache';
import { UsersRepository } from './users.repository';
import { UsersService } from './users.service';

@Module({
  providers: [
    UsersRepository,
    UsersService,
    { provide: UserStateCache, inject: [ClusterEventBus], useFactory: (bus: ClusterEventBus) => new ClusterUserStateCache(bus) },
  ],
  exports: [UsersService, UserStateCache],
})
export class UsersModule {}
