import { migratedColumns } from '@app/database';
import { API_KEY_TABLE_COLUMNS } from './api-keys/api-key.repository';
import { BACKUP_CODE_TABLE_COLUMNS } from './mfa/backup-code.repository';
import { SMS_CHALLENGE_TABLE_COLUMNS } from './mfa/sms-challenge.repository';
import { USER_MFA_TABLE_COLUMNS } from './mfa/user-mfa.repository';
import { REFRESH_TOKEN_TABLE_COLUMNS } from './tokens/refresh-token.repository';

/** Each repository of this lib against the schema the migrations build: a new column or a rename shows up here. */
describe.each([
  ['refresh_tokens', REFRESH_TOKEN_TABLE_COLUMNS],
  ['api_keys', API_KEY_TABLE_COLUMNS],
  ['user_mfa', USER_MFA_TABLE_COLUMNS],
  ['mfa_backup_codes', BACKUP_CODE_TABLE_COLUMNS],
  ['mfa_sms_challenges', SMS_CHALLENGE_TABLE_COLUMNS],
])('the repository of %s', (table, columns) => {
  it('knows every column as the migrations define it', async () => {
    expect([...columns]).toEqual((await migratedColumns()).get(table));
  });
});
