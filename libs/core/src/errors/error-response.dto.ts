import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'ErrorDetail' })
export class ErrorDetailDto {
  @ApiPropertyOptional({ example: 'email', description: 'The field at fault, nested ones with a dotted path' }) field?: string;
  @ApiProperty({ example: 'email must be an email' }) message: string;
  @ApiPropertyOptional({ example: 'isEmail', description: 'The rule the field broke' }) code?: string;
}

/**
 * The contract's Error body. The OpenAPI document adds the catalogue of `error` codes as an enum
 * and an example per status (apps/server/src/swagger.ts).
 */
@ApiSchema({ name: 'Error' })
export class ErrorResponseDto {
  @ApiProperty({ example: 'VALIDATION_ERROR', description: 'Stable error code; the list grows, codes are never renamed.' }) error: string;
  @ApiProperty({ example: 'Invalid request parameters' }) message: string;
  @ApiPropertyOptional({ type: [ErrorDetailDto] }) details?: ErrorDetailDto[];
  @ApiProperty({ format: 'date-time', example: '2026-01-15T09:30:00.000Z' }) timestamp: string;
  @ApiProperty({
    example: 'req_Qx3vN8kZp2LmT5aR',
    description: "The request's id (a caller's well-formed X-Request-Id is kept), also in the server log",
  })
  requestId: string;
  @ApiPropertyOptional({ example: '4bf92f3577b34da6a3ce929d0e0e4736', description: 'W3C trace id (32 hex digits) of the request' })
  traceId?: string;
}
