import { ArgumentMetadata, PipeTransform, ValidationError, ValidationPipe, ValidationPipeOptions } from '@nestjs/common';
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
export function createValidationPipe(): PipeTransform {
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
 * get a copy of it without transforming or validating again (class-transformer and
 * class-validator were a visible share of a cached read). Custom parameter decorators (the
 * principal, the actor) are not validated (validateCustomDecorators is off): their value is
 * handed on as it is, without a promise per parameter.
 */
class AppValidationPipe implements PipeTransform {
  private readonly pipe: ValidationPipe;
  /** Per query DTO class: the instance an empty query became, once it passed validation. */
  private readonly emptyQueries = new WeakMap<object, object>();

  constructor(private readonly options: ValidationPipeOptions) {
    this.pipe = new ValidationPipe(options);
  }

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    // What ValidationPipe answers for them (without expectedType and validateCustomDecorators), at once.
    if (metadata.type === 'custom' && !this.options.validateCustomDecorators && !this.options.expectedType) return value;
    const metatype = metadata.metatype;
    const emptyQuery = metadata.type === 'query' && metatype !== undefined && !this.options.expectedType && isEmptyObject(value);
    if (!emptyQuery) return this.pipe.transform(value, metadata);
    const known = this.emptyQueries.get(metatype);
    if (known) return copyOf(known);
    return this.firstEmptyQuery(value, metadata, metatype);
  }

  private async firstEmptyQuery(value: unknown, metadata: ArgumentMetadata, metatype: object): Promise<unknown> {
    const result: unknown = await this.pipe.transform(value, metadata);
    // Only a DTO of plain values can be copied safely (each request gets its own instance).
    if (typeof result === 'object' && result !== null && Object.values(result).every(isPlainValue)) {
      this.emptyQueries.set(metatype, copyOf(result));
    }
    return result;
  }
}

/** A fresh instance of the same class with the same own (plain) values. */
function copyOf<T extends object>(instance: T): T {
  return Object.assign(Object.create(Object.getPrototypeOf(instance) as object | null) as T, instance);
}

function isPlainValue(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
