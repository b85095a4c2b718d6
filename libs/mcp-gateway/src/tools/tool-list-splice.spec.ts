import { ToolListSplice } from './tool-list-splice';

describe('ToolListSplice', () => {
  const tools = [
    { name: 'a', inputSchema: { type: 'object' } },
    { name: 'é', description: 'ü', inputSchema: { type: 'object' } },
  ];

  it('puts the held JSON where the placeholder array was serialised', () => {
    const splice = new ToolListSplice();
    expect(splice.held).toBe(false);
    const placeholder = splice.hold(Buffer.from(JSON.stringify(tools)));
    expect(splice.held).toBe(true);
    const answer = JSON.stringify({ result: { tools: placeholder, nextCursor: 'x' }, jsonrpc: '2.0', id: 7 });
    const spliced = splice.apply(answer);
    expect(JSON.parse(spliced.toString())).toEqual({ result: { tools, nextCursor: 'x' }, jsonrpc: '2.0', id: 7 });
  });

  it('passes answers through when nothing is held', () => {
    expect(new ToolListSplice().apply('{"a":1}')).toBe('{"a":1}');
  });

  it('refuses an answer without the placeholder rather than send it unchanged', () => {
    const splice = new ToolListSplice();
    splice.hold(Buffer.from('[]'));
    expect(() => splice.apply('{"result":{"tools":[]}}')).toThrow(/placeholder/);
  });
});
