export * from './api-key-secret';
export * from './api-key.view';
export * from './api-key.service';
export * from './dto/api-key.dto';
