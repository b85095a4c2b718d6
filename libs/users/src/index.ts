export { USER_TABLE_COLUMNS } from './users.repository';
export type { LoginCandidate, User, UserStatus } from './users.repository';
export { UserDto } from './user.dto';
export { InMemoryUserStateCache } from './user-state.cache';
export type { UserAccessState } from './user-state.cache';
export { UsersService, lockoutPolicyOf } from './users.service';
export type { LockoutPolicy } from './users.service';
export { UsersModule } from './users.module';
