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

type PassportMiddleware = (req: unknown, res: unknown, next: (error?: unknown) => void) => void;
/** passport ships no types (@nestjs/passport loads it untyped too); only `authenticate` is used here. */
const passport = require('passport') as {
  authenticate(strategy: object, options: object, callback: (error: unknown, user: unknown) => void): PassportMiddleware;
};

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

/**
 * The @nestjs/passport guard of POST /auth/login: runs the 'password' strategy; its errors are the service's own.
 * It hands Passport this application's own strategy (a fresh object over it per request, as Passport
 * does for a strategy it finds by name), not the one Passport's process-wide registry holds under the
 * name: a second application in the same process (in-process replicas, tests) would otherwise have
 * its strategy, with its own database, answer this one's sign-ins.
 */
@Injectable()
export class PasswordLoginGuard extends AuthGuard('password') {
  constructor(private readonly strategy: PasswordStrategy) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<PasswordSignedIn>();
    const response = http.getResponse<unknown>();
    const layer = Object.create(this.strategy) as object;
    request.user = await new Promise<LoginResponseDto>((resolve, reject) => {
      const authenticate = passport.authenticate(layer, { session: false }, (error: unknown, user: unknown) => {
        try {
          resolve(this.handleRequest(error, user as LoginResponseDto));
        } catch (thrown) {
          reject(thrown);
        }
      });
      authenticate(request, response, (error) => (error ? reject(error) : reject(new Error('password sign-in did not finish'))));
    });
    return true;
  }

  override handleRequest<T>(error: unknown, user: T): T {
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return user;
  }
}
