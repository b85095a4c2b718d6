export { UserEntity } from './user.entity';
export type { UserStatus } from './user.entity';
export { UserDto } from './user.dto';
export type { UserAccessState } from './user-state.cache';
export { UsersService, lockoutPolicyOf } from './users.service';
export type { LockoutPolicy, LoginCandidate } from './users.service';
export { UsersModule } from './users.module';
