import { HostAllowList } from './host-allow-list';

describe('HostAllowList', () => {
  const list = new HostAllowList(['api.example.com', '*.example.org', '127.0.0.1', '[::1]', 'Trailing.Example.']);

  it('matches exact hosts, ignoring case and a trailing dot', () => {
    expect(list.allows('api.example.com')).toBe(true);
    expect(list.allows('API.Example.COM.')).toBe(true);
    expect(list.allows('trailing.example')).toBe(true);
    expect(list.allows('127.0.0.1')).toBe(true);
    expect(list.allows('[::1]')).toBe(true);
  });

  it('matches names below a wildcard suffix but not the suffix itself or look-alikes', () => {
    expect(list.allows('a.example.org')).toBe(true);
    expect(list.allows('b.a.example.org')).toBe(true);
    expect(list.allows('example.org')).toBe(false);
    expect(list.allows('evilexample.org')).toBe(false);
    expect(list.allows('example.org.evil.com')).toBe(false);
  });

  it('refuses everything else, and everything when empty', () => {
    expect(list.allows('example.com')).toBe(false);
    expect(list.allows('api.example.com.evil.com')).toBe(false);
    expect(list.allows('127.0.0.2')).toBe(false);
    expect(list.allows('[::ffff:7f00:1]')).toBe(false);
    expect(new HostAllowList([]).allows('localhost')).toBe(false);
    expect(new HostAllowList([]).isEmpty).toBe(true);
  });
});
