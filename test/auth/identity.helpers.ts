/** Kept for the suites that import from here: the identity kit lives in test/support/identity.ts. */
import { identityEnv } from '../support/identity';

export { ADMIN_EMAIL, ADMIN_PASSWORD, comparable, controlClock, IdentityClient, PASSWORD } from '../support/identity';

/** Env for identity suites: cheap bcrypt, limits out of the way unless a test is about them. */
export const IDENTITY_ENV = identityEnv();
