import { ValidateIf } from 'class-validator';

/**
 * The field may be left out, but `null` is validated like any other value (and refused by the
 * field's rules). Unlike @IsOptional, which lets null through: null is not "unchanged" in a PUT.
 */
export const OptionalNotNull = (): PropertyDecorator => ValidateIf((_object: object, value: unknown) => value !== undefined);
