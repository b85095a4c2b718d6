import { Body, Controller, Get, Module, Post } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsEmail, IsInt, IsOptional, IsString, Max, MinLength, ValidateNested } from 'class-validator';
import { Public } from '@app/core';

class ProbeInner {
  @IsInt() @Max(10) count: number;
}

class ProbeBody {
  @IsEmail() email: string;
  @IsString() @MinLength(3) name: string;
  @IsOptional() @ValidateNested() @Type(() => ProbeInner) inner?: ProbeInner;
}

/** Routes that exist only in the end-to-end suites, to drive the global HTTP plumbing. */
@Public()
@Controller('probe')
class ProbeController {
  @Post('echo')
  echo(@Body() body: ProbeBody): ProbeBody {
    return body;
  }

  @Get('boom')
  boom(): never {
    throw new Error('internal detail: password=hunter2 at /srv/app/secret.ts:42');
  }
}

@Module({ controllers: [ProbeController] })
export class ProbeModule {}
