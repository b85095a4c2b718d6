import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UserEntity } from './user.entity';
import { InMemoryUserStateCache, UserStateCache } from './user-state.cache';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([UserEntity])],
  providers: [UsersService, { provide: UserStateCache, useFactory: () => new InMemoryUserStateCache() }],
  exports: [UsersService, UserStateCache],
})
export class UsersModule {}
