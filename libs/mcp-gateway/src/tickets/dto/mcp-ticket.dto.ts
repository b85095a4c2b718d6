import { ApiProperty, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'McpTicket' })
export class McpTicketDto {
  @ApiProperty({ description: 'Single use; put it in the WebSocket URL as ?ticket=' }) ticket: string;
  @ApiProperty({ type: 'integer', description: 'Seconds until it expires' }) expiresIn: number;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
}
