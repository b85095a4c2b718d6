import { migratedColumns } from '@app/database';
import { USER_TABLE_COLUMNS } from './users.repository';

describe('UsersRepository', () => {
  it('knows every column of users as the migrations define it', async () => {
    expect([...USER_TABLE_COLUMNS]).toEqual((await migratedColumns()).get('users'));
  });
});
