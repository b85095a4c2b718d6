import { IsEmail, IsInt, IsOptional, Max, ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';
import { AppException } from '../errors/app.exception';
import { createValidationPipe } from './validation.pipe';

class Inner {
  @IsInt() @Max(10) count: number;
}
class Outer {
  @IsEmail() email: string;
  @IsOptional() @ValidateNested() @Type(() => Inner) inner?: Inner;
}

describe('createValidationPipe', () => {
  const pipe = createValidationPipe();
  const meta = { type: 'body' as const, metatype: Outer };

  it('names each offending field, nested ones with a dotted path, and unknown properties', async () => {
    const error = await pipe.transform({ email: 'nope', inner: { count: 11 }, role: 'admin' }, meta).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppException);
    expect(error.getStatus()).toBe(400);
    expect(error.code).toBe('VALIDATION_ERROR');
    const fields = (error as AppException).details.map((d) => `${d.field}:${d.code}`).sort();
    expect(fields).toEqual(['email:isEmail', 'inner.count:max', 'role:unknownProperty']);
  });

  it('returns a DTO instance for valid input', async () => {
    const value = await pipe.transform({ email: 'a@b.co', inner: { count: 3 } }, meta);
    expect(value).toBeInstanceOf(Outer);
    expect(value.inner).toBeInstanceOf(Inner);
  });

  it('answers empty queries from the first verdict: fresh instances with defaults, or the same refusal', async () => {
    class Paging {
      @IsOptional() @IsInt() @Max(10) limit: number = 5;
    }
    class Required {
      @IsInt() count: number;
    }
    const query = (metatype: new () => object) => ({ type: 'query' as const, metatype });
    const first = await pipe.transform({}, query(Paging));
    const second = await pipe.transform({}, query(Paging));
    expect(second).toBeInstanceOf(Paging);
    expect(second).toEqual({ limit: 5 });
    expect(second).not.toBe(first);
    for (let i = 0; i < 2; i++) {
      const error = await pipe.transform({}, query(Required)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppException);
      expect((error as AppException).details.map((d) => d.field)).toEqual(['count']);
    }
    const refused = await pipe.transform({ limit: '50' }, query(Paging)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppException);
  });

  it('hands each request its own copy of the empty query DTO', async () => {
    class Paging {
      @IsOptional() @IsInt() @Max(10) limit: number = 5;
    }
    const meta = { type: 'query' as const, metatype: Paging };
    await pipe.transform({}, meta);
    const mine = (await pipe.transform({}, meta)) as Paging;
    mine.limit = 9;
    const theirs = (await pipe.transform({}, meta)) as Paging;
    expect(theirs).toBeInstanceOf(Paging);
    expect(theirs.limit).toBe(5);
  });

  it('hands the values of custom parameter decorators on as they are, not validated', async () => {
    const principal = { userId: 'usr_1', email: 'not an email', extra: { nested: true } };
    expect(await pipe.transform(principal, { type: 'custom', metatype: Outer })).toBe(principal);
  });
});
