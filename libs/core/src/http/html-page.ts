/** Text for HTML (element content and quoted attribute values). */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * The pages' Content-Security-Policy: nothing but the page itself, no script, no style, no frame
 * around it, no <base>. Forms post to this origin; the redirect after them goes to the client.
 */
export const PAGE_CSP = "default-src 'none'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/** One page: a language, a title, a main landmark with one h1. No script or style, inline or not. */
export function page(title: string, main: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} — Secure MCP Server</title>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${main}
</main>
</body>
</html>
`;
}

/** An error message announced to assistive technology, referenced by the form's fields. */
export function alert(message: string | undefined): string {
  return message ? `<p id="form-error" role="alert">${escapeHtml(message)}</p>\n` : '';
}
