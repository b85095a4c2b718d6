import { Injectable } from '@nestjs/common';
import type { Principal } from '@app/core';
import { resolvePermissions } from '@app/core';
import { SessionService } from '@app/sessions';
import { UsersService } from '@app/users';

/**
 * A long-lived connection authenticated once (a WebSocket, by ticket) re-checks its principal on
 * every message, as a request would: the credential's session must still be active and the user
 * too, and permissions are the user's current ones (an API key's stay within the key's subset).
 */
@Injectable()
export class PrincipalRefresher {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UsersService,
  ) {}

  async refresh(original: Principal): Promise<Principal | null> {
    if (original.sessionId && !(await this.sessions.isActive(original.sessionId))) return null;
    const user = await this.users.accessState(original.userId);
    if (!user || user.status !== 'active') return null;
    const own = resolvePermissions(user.roles, user.permissions);
    const permissions = original.via === 'api_key' ? own.filter((permission) => original.permissions.includes(permission)) : own;
    return { ...original, email: user.email, roles: [...user.roles], permissions };
  }
}
