import { Logger as NestLogger } from '@nestjs/common';
import { TypeOrmLogger } from './typeorm-logger';

describe('TypeOrmLogger', () => {
  afterEach(() => jest.restoreAllMocks());

  it('logs a unique violation (an expected 409) at debug, any other failed query as a warning', () => {
    const warn = jest.spyOn(NestLogger.prototype, 'warn').mockImplementation(() => undefined);
    const debug = jest.spyOn(NestLogger.prototype, 'debug').mockImplementation(() => undefined);
    const logger = new TypeOrmLogger();

    const duplicate = Object.assign(new Error('duplicate key value violates unique constraint "UQ_users_email"'), { code: '23505' });
    logger.logQueryError(duplicate, 'INSERT INTO users …', ['secret']);
    const wrapped = Object.assign(new Error('duplicate key'), { driverError: { code: '23505' } });
    logger.logQueryError(wrapped, 'INSERT …');
    expect(warn).not.toHaveBeenCalled();
    expect(debug).toHaveBeenCalledTimes(2);

    logger.logQueryError(Object.assign(new Error('violates check constraint'), { code: '23514' }), 'INSERT …');
    logger.logQueryError('connection reset', 'SELECT 1');
    expect(warn).toHaveBeenCalledTimes(2);
    expect(String(warn.mock.calls[0][0])).toMatch(/^Query failed: /);
  });
});
