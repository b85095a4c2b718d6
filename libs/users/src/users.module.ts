import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ClusterEventBus } from '@app/redis';
import { UserEntity } from './user.entity';
import { ClusterUserStateCache } from './cluster-user-state.cache';
import { UserStateCache } from './user-state.cache';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([UserEntity])],
  providers: [UsersService, { provide: UserStateCache, inject: [ClusterEventBus], useFactory: (bus: ClusterEventBus) => new ClusterUserStateCache(bus) }],
  exports: [UsersService, UserStateCache],
})
export class UsersModule {}
