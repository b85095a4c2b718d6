import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { AppException, ErrorDetail } from '../errors/app.exception';

/** Flattens class-validator's tree into one entry per offending field, with dotted paths. */
export function toErrorDetails(errors: ValidationError[], parent = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    for (const [code, message] of Object.entries(error.constraints ?? {})) {
      details.push({ field, message, code: code === 'whitelistValidation' ? 'unknownProperty' : code });
    }
    if (error.children?.length) details.push(...toErrorDetails(error.children, field));
  }
  return details;
}

/** The global pipe: strip nothing silently, refuse unknown properties, convert to DTO instances. */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    stopAtFirstError: false,
    exceptionFactory: (errors) => AppException.validation(toErrorDetails(errors)),
  });
}

/**
 * Most reads carry no query string at all, and an empty query always turns into the same DTO
 * (its defaults) with the same verdict: once that DTO has passed validation, later empty queries
 * get a fresh instance without validating again (class-validator was a visible share of a cached read).
 */
class AppValidationPipe extends ValidationPipe {
  private readonly validWhenEmpty = new WeakSet<object>();

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const metatype = metadata.metatype;
    const emptyQuery = metadata.type === 'query' && metatype !== undefined && isEmptyObject(value);
    if (emptyQuery && this.validWhenEmpty.has(metatype)) return plainToInstance(metatype, {}, this.transformOptions);
    const result: unknown = await super.transform(value, metadata);
    if (emptyQuery) this.validWhenEmpty.add(metatype);
    return result;
  }
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
