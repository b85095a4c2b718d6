import { registerDecorator, ValidationArguments, ValidationOptions } from 'class-validator';
import { passwordProblems } from './password-policy';

/** Applies the whole password policy (pattern, 72-byte limit, common passwords) as one constraint. */
export function IsAcceptablePassword(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'acceptablePassword',
      target: target.constructor,
      propertyName: propertyName as string,
      options,
      validator: {
        validate: (value: unknown) => passwordProblems(value).length === 0,
        defaultMessage: (args?: ValidationArguments) => passwordProblems(args?.value).join('; '),
      },
    });
  };
}
