import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, Permission, Principal, RequirePermissions } from '@app/core';
import { McpTicketDto } from './dto/mcp-ticket.dto';
import { TicketService } from './ticket.service';

/** Extension to the contract: tickets for MCP over WebSocket (/api/v1/mcp/ws, /api/v1/contexts/{id}/mcp/ws). */
@ApiTags('Tools')
@Controller('mcp/tickets')
export class McpTicketsController {
  constructor(private readonly tickets: TicketService) {}

  @Post()
  @HttpCode(200)
  @RequirePermissions(Permission.TOOLS_EXECUTE)
  @ApiOperation({
    summary: 'Get a WebSocket ticket (extension)',
    description:
      'For MCP clients that cannot set headers on a WebSocket upgrade: a single-use ticket, valid for seconds, ' +
      'that stands for the caller of this request. Connect to /api/v1/mcp/ws?ticket=… with subprotocol "mcp".',
  })
  @ApiOkResponse({ description: 'The ticket', type: McpTicketDto })
  async issue(@CurrentPrincipal() principal: Principal): Promise<McpTicketDto> {
    const issued = await this.tickets.issue(principal);
    return { ticket: issued.ticket, expiresIn: issued.expiresIn, expiresAt: issued.expiresAt.toISOString() };
  }
}
