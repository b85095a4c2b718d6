import { migratedColumns } from '@app/database';
import { UPSTREAM_CREDENTIALS_TABLE_COLUMNS } from './upstream-credential.repository';

describe('the repository of upstream_credentials', () => {
  it('knows every column as the migrations define it', async () => {
    expect([...UPSTREAM_CREDENTIALS_TABLE_COLUMNS]).toEqual((await migratedColumns()).get('upstream_credentials'));
  });
});
