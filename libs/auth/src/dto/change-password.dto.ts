import { ApiProperty } from '@nestjs/swagger';
import { IsString, MaxLength } from 'class-validator';
import { IsAcceptablePassword } from '../password/is-acceptable-password.decorator';

export class ChangePasswordDto {
  @ApiProperty({ description: 'The password the account has now.' })
  @IsString()
  // Long enough for any real password, short enough that bcrypt never sees a huge input.
  @MaxLength(1024)
  currentPassword: string;

  @ApiProperty({
    minLength: 12,
    pattern: '^(?=.*[a-z])(?=.*[A-Z])(?=.*\\d)(?=.*[@$!%*?&])[A-Za-z\\d@$!%*?&]{12,}$',
    description: 'The registration policy applies: at most 72 bytes, common passwords refused, must differ from the current one.',
  })
  @IsString()
  @IsAcceptablePassword()
  newPassword: string;
}
