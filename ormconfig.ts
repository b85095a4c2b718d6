import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '@app/core';
import { buildDataSourceOptions } from '@app/database';

/**
 * The TypeORM CLI data source (npm run migration:*). It needs DATABASE_URL: the embedded
 * default runs its migrations itself at start. Same options object as the application.
 */
const config = loadConfig(process.env);
if (!config.database.url) {
  throw new Error('Set DATABASE_URL to run the TypeORM CLI (the embedded database migrates itself at start)');
}

export default new DataSource(buildDataSourceOptions(config, undefined, [__dirname + '/libs/**/*.entity.{ts,js}']));
