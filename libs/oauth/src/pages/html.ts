/** The server-rendered pages' helpers live in core (the upstream connect pages use them too). */
export { alert, escapeHtml, page, PAGE_CSP } from '@app/core';
