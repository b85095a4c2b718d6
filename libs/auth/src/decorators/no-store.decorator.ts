import { applyDecorators, Header } from '@nestjs/common';

/**
 * For answers that carry a token or a secret: no cache (browser, proxy or CDN) may keep a copy
 * (RFC 6749 §5.1). Pragma is for HTTP/1.0 caches.
 */
export const NoStore = (): MethodDecorator => applyDecorators(Header('Cache-Control', 'no-store'), Header('Pragma', 'no-cache'));
