import { matchPathTemplate } from './path-template';

describe('matchPathTemplate', () => {
  it('matches literal paths and captures :params', () => {
    expect(matchPathTemplate('/api/v1/mcp/ws', '/api/v1/mcp/ws')).toEqual({});
    expect(matchPathTemplate('/api/v1/mcp/ws', '/api/v1/mcp/ws/')).toEqual({});
    expect(matchPathTemplate('/api/v1/contexts/:id/mcp/ws', '/api/v1/contexts/ctx_1%2Fx/mcp/ws')).toEqual({ id: 'ctx_1/x' });
  });

  it('refuses other paths, empty params and bad escapes', () => {
    expect(matchPathTemplate('/api/v1/mcp/ws', '/api/v1/mcp')).toBeNull();
    expect(matchPathTemplate('/api/v1/contexts/:id/mcp/ws', '/api/v1/contexts//mcp/ws')).toBeNull();
    expect(matchPathTemplate('/api/v1/contexts/:id/mcp/ws', '/api/v1/contexts/%E0%A4%A/mcp/ws')).toBeNull();
    expect(matchPathTemplate('/api/v1/contexts/:id/mcp/ws', '/api/v1/contexts/a/b/mcp/ws')).toBeNull();
  });
});
