import { ValidationError, ValidationPipe } from '@nestjs/common';
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
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    stopAtFirstError: false,
    exceptionFactory: (errors) => AppException.validation(toErrorDetails(errors)),
  });
}
