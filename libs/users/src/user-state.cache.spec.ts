import { InMemoryUserStateCache, UserAccessState } from './user-state.cache';

const state = (roles: UserAccessState['roles']): UserAccessState => ({
  id: 'usr_1',
  email: 'a@example.com',
  status: 'active',
  roles,
  permissions: [],
});

describe('InMemoryUserStateCache', () => {
  it('serves what was set until invalidated', () => {
    const cache = new InMemoryUserStateCache();
    cache.set('usr_1', state(['admin']), cache.generation('usr_1'));
    expect(cache.get('usr_1')?.roles).toEqual(['admin']);
    cache.invalidate('usr_1');
    expect(cache.get('usr_1')).toBeUndefined();
  });

  it('drops a load that started before an invalidation (it may carry the old roles)', () => {
    const cache = new InMemoryUserStateCache();
    const before = cache.generation('usr_1');
    cache.invalidate('usr_1');
    cache.set('usr_1', state(['admin']), before);
    expect(cache.get('usr_1')).toBeUndefined();
    cache.set('usr_1', state(['user']), cache.generation('usr_1'));
    expect(cache.get('usr_1')?.roles).toEqual(['user']);
  });

  it('expires entries after its time to live', () => {
    const cache = new InMemoryUserStateCache(0);
    cache.set('usr_1', state(['user']), cache.generation('usr_1'));
    expect(cache.get('usr_1')).toBeUndefined();
  });
});
