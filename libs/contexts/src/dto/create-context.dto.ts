import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsString, Length, MaxLength } from 'class-validator';
import { CONTEXT_JSON_LIMITS, IsBoundedJsonObject } from '../bounded-json';
import { OptionalNotNull } from './optional-not-null.decorator';

export const MAX_CONTEXT_NAME = 200;
export const MAX_CONTEXT_DESCRIPTION = 2_000;
export const MAX_CONTEXT_TOOLS = 100;

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
const bounds = `a JSON object of at most ${CONTEXT_JSON_LIMITS.maxBytes} bytes, nested at most ${CONTEXT_JSON_LIMITS.maxDepth} levels`;

export class CreateContextDto {
  @ApiProperty({ maxLength: MAX_CONTEXT_NAME })
  @Transform(trimmed)
  @IsString()
  @Length(1, MAX_CONTEXT_NAME)
  name: string;

  @ApiPropertyOptional({ maxLength: MAX_CONTEXT_DESCRIPTION })
  @OptionalNotNull()
  @IsString()
  @MaxLength(MAX_CONTEXT_DESCRIPTION)
  description?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: `Free-form: ${bounds}` })
  @OptionalNotNull()
  @IsBoundedJsonObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: [String],
    maxItems: MAX_CONTEXT_TOOLS,
    description:
      'Tool ids from the catalogue that you may call; each unknown or forbidden one is reported as tools[i]. Extension: also the names of federated prompts and the URIs of federated resources and resource templates you may use (the context endpoint then shows only those)',
  })
  @OptionalNotNull()
  @IsArray()
  @ArrayMaxSize(MAX_CONTEXT_TOOLS)
  @IsString({ each: true })
  @Length(1, 128, { each: true })
  tools?: string[];

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      `${bounds}. Understood: defaultTimeoutMs (integer, at most the server's TOOLS_MAX_TIMEOUT_MS), ` +
      'rateLimit { requests, window } (e.g. { "requests": 100, "window": "1m" }); other keys are kept as given',
  })
  @OptionalNotNull()
  @IsBoundedJsonObject()
  settings?: Record<string, unknown>;
}
