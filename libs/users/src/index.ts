export type { LoginCandidate, User, UserListFilter, UserStatus } from './users.repository';
export * from './user.dto';
export * from './user-state.cache';
export * from './cluster-user-state.cache';
export * from './users.service';
export * from './users.module';
export { USER_TABLE_COLUMNS } from './users.repository';
