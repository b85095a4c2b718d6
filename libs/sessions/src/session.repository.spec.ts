import { migratedColumns } from '@app/database';
import { SESSION_TABLE_COLUMNS } from './session.repository';

describe('SessionRepository', () => {
  it('knows every column of sessions as the migrations define it', async () => {
    expect([...SESSION_TABLE_COLUMNS]).toEqual((await migratedColumns()).get('sessions'));
  });
});
