import { InitialSchema1764000000000 } from './1764000000000-initial-schema';

/** Every migration, oldest first. Listed explicitly so build, tests and CLI load the same set. */
export const MIGRATIONS = [InitialSchema1764000000000];
