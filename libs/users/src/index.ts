export * from './user.entity';
export * from './user.dto';
export * from './user-state.cache';
export * from './cluster-user-state.cache';
export * from './users.service';
export * from './users.module';
