import { Controller, Get, Post } from '@nestjs/common';
import { DiscoveryModule, Reflector } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { Authenticated, InteractiveOnly, Public, RequirePermissions, Roles } from '@app/core';
import { RouteAccessCheck, undeclaredRoutes } from './route-access.check';

@Controller('declared')
class Declared {
  @Get('open') @Public() open(): void {}
  @Get('me') @Authenticated() me(): void {}
  @Post('mfa') @InteractiveOnly() mfa(): void {}
  @Get('list') @RequirePermissions('tools:read') list(): void {}
  helper(): void {}
}

@Roles('admin')
@Controller('admin')
class ClassLevel {
  @Get() list(): void {}
}

@Controller('forgot')
class Forgot {
  @Get('a') @Public() fine(): void {}
  @Post('b') forgotten(): void {}
}

class Inherited extends Forgot {}

describe('undeclaredRoutes', () => {
  const reflector = new Reflector();

  it('accepts handlers that declare access on themselves or their class, and ignores non-route methods', () => {
    expect(undeclaredRoutes([Declared, ClassLevel], reflector)).toEqual([]);
  });

  it('names each handler that declares nothing, inherited ones too', () => {
    expect(undeclaredRoutes([Forgot], reflector)).toEqual(['Forgot.forgotten']);
    expect(undeclaredRoutes([Inherited], reflector)).toEqual(['Inherited.forgotten']);
  });

  it('stops the application at boot when a controller route declares nothing', async () => {
    const build = (controllers: Array<new () => object>) =>
      Test.createTestingModule({ imports: [DiscoveryModule], controllers, providers: [RouteAccessCheck] }).compile();
    const fine = await build([Declared, ClassLevel]);
    await expect(fine.init()).resolves.toBe(fine);
    await fine.close();
    const broken = await build([Declared, Forgot]);
    const refused = await broken.init().then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain('Forgot.forgotten');
  });
});
