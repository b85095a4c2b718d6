import { ApiProperty } from '@nestjs/swagger';
import { UserDto } from '@app/users';

export class MfaResetResponseDto {
  @ApiProperty({ type: UserDto, description: 'The user, now with mfaEnabled false' }) user: UserDto;
  @ApiProperty({ description: "The user's sessions ended by the reset (all of them)" }) sessionsEnded: number;
}
