/** Injection token for a replacement HttpTransport (tests only: observe or stop the fetch tool's connections). */
export const TOOLS_HTTP_TRANSPORT = Symbol('TOOLS_HTTP_TRANSPORT');
