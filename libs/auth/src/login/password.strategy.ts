import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard, PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { actorOf, createValidationPipe } from '@app/core';
import { AuthService } from '../auth.service';
import { LoginDto } from '../dto/login.dto';
import { LoginResponseDto } from '../dto/login-response.dto';

/** A request POST /auth/login authenticated: the sign-in's tokens, as the strategy left them. */
export interface PasswordSignedIn extends FastifyRequest {
  user?: LoginResponseDto;
}

type Verify = (req: FastifyRequest, done: (error: unknown, user?: unknown) => void) => void;

interface PassportActions {
  success(user: unknown, info?: unknown): void;
  error(error: unknown): void;
}

/** The Passport strategy base named 'password': hands the request to `verify` (the body was parsed by Fastify). */
class PasswordMfa {
  constructor(readonly verify: Verify) {}

  authenticate(this: PasswordMfa & PassportActions, req: FastifyRequest): void {
    this.verify(req, (error, user) => (error ? this.error(error) : this.success(user)));
  }
}

/**
 * Sign-in with email, password and (for an enrolled account) the second factor (TOTP, backup code,
 * or the SMS code sent by the first attempt) as a Passport strategy behind an @nestjs/passport guard
 * (PasswordLoginGuard). `validate` checks the body exactly as the route's ValidationPipe would (the
 * guard runs before pipes), then AuthService.login applies lockout, MFA, audit and opens the session:
 * every answer (the contract's Error bodies included) is the one POST /auth/login always gave.
 */
@Injectable()
export class PasswordStrategy extends PassportStrategy(PasswordMfa, 'password') {
  private readonly pipe = createValidationPipe();

  constructor(private readonly auth: AuthService) {
    super();
  }

  async validate(req: FastifyRequest): Promise<LoginResponseDto> {
    const dto = (await this.pipe.transform(req.body, { type: 'body', metatype: LoginDto })) as LoginDto;
    return this.auth.login(dto, actorOf(req));
  }
}

/** The @nestjs/passport guard of POST /auth/login: runs the 'password' strategy; its errors are the service's own. */
@Injectable()
export class PasswordLoginGuard extends AuthGuard('password') {
  override canActivate(context: ExecutionContext): Promise<boolean> {
    return super.canActivate(context) as Promise<boolean>;
  }

  override handleRequest<T>(error: unknown, user: T): T {
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return user;
  }
}
