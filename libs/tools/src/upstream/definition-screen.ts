import type { PinnedDefinition } from './upstream-tool-definition';

/**
 * What the screen looks for in an upstream tool definition. Everything in a definition is read
 * by the model as trusted guidance, so text that addresses the model, hides from a human reviewer
 * or points at credentials is held for an administrator before any agent sees it.
 */
export type FindingKind =
  /** Zero-width, bidi control, Unicode tag, variation selector, private-use or control characters. */
  | 'hidden-characters'
  /** `<!-- … -->`: invisible wherever the description is rendered as Markdown or HTML. */
  | 'html-comment'
  /** `<IMPORTANT>`, `<system>`, `<instructions>`, `[INST]`, `<|im_start|>` and the like. */
  | 'instruction-markup'
  /** Phrases that override instructions, ask for secrecy, or tell the model to act before or besides the call. */
  | 'instruction-phrase'
  /** SSH keys, cloud and package-registry credentials, `.env`, /etc/passwd and similar. */
  | 'sensitive-path';

export interface DefinitionFinding {
  kind: FindingKind;
  /** Where, as a dotted path into the definition: `description`, `inputSchema.properties.path.description`. */
  field: string;
  /** The matched text (hidden characters spelled as \uXXXX), cut to EXCERPT_LENGTH. */
  excerpt: string;
}

const EXCERPT_LENGTH = 120;
/** Bounds the walk over an upstream's schemas (they come from an untrusted server). */
const MAX_STRINGS = 5_000;
const MAX_DEPTH = 32;
const MAX_FINDINGS = 50;

// Cc other than tab/newline/CR, every Cf (zero-width, bidi, tags, soft hyphen, BOM), private use,
// and variation selectors (used to smuggle bytes into text that renders as one character).
const HIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\p{Cf}\p{Co}\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/u;
const HIDDEN_GLOBAL = new RegExp(HIDDEN.source, 'gu');

/** Each rule is a plain alternation without nested quantifiers: linear on any input. */
const TEXT_RULES: Array<{ kind: FindingKind; pattern: RegExp }> = [
  { kind: 'html-comment', pattern: /<!--/ },
  {
    kind: 'instruction-markup',
    pattern:
      /<\/?\s*(?:important|system|instructions?|prompt|secret|hidden|admin|assistant|context|rules?|critical|override)\b[^>]{0,40}>|\[\/?INST\]|<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>/i,
  },
  {
    kind: 'instruction-phrase',
    pattern: new RegExp(
      [
        String.raw`\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|preceding|other|system)\s+(?:instructions?|directions?|prompts?|rules?|messages?)`,
        String.raw`\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention|reveal|disclose|notify|alert|show)\b[^.]{0,40}\b(?:user|human|anyone|them)\b`,
        String.raw`\bwithout\s+(?:telling|informing|notifying|alerting|asking)\s+(?:the\s+)?(?:user|human|anyone)\b`,
        String.raw`\bkeep\s+(?:this|it|that)\s+(?:a\s+)?(?:secret|quiet|hidden|confidential)\b`,
        String.raw`\b(?:the\s+)?user\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|be\s+told|find\s+out)\b`,
        String.raw`\bbefore\s+(?:using|calling|invoking|running|answering|responding|greeting)\b[^.]{0,60}\b(?:read|open|fetch|send|upload|include|call|invoke|cat)\b`,
        String.raw`\b(?:you\s+are\s+now|act\s+as|new\s+instructions|system\s+prompt)\b`,
        String.raw`\b(?:pass|send|include|append|upload|forward|exfiltrate)\b[^.]{0,40}\b(?:contents?\s+of|private\s+key|credentials?|passwords?|api\s+keys?|tokens?)\b`,
      ].join('|'),
      'i',
    ),
  },
  {
    kind: 'sensitive-path',
    pattern:
      /~\/\.ssh|\.ssh\/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws\/credentials|\.config\/gcloud|\.kube\/config|\.docker\/config\.json|\.netrc\b|\.npmrc\b|\.pypirc\b|\.pgpass\b|\.git-credentials\b|(?:^|[\s/'"`])\.env\b|\/etc\/(?:passwd|shadow|sudoers)\b|mcp\.json\b|claude_desktop_config|BEGIN\s+(?:RSA\s+|OPENSSH\s+|EC\s+)?PRIVATE\s+KEY/i,
  },
];

/** Hidden characters spelled out, so an administrator can see what was there. */
function visible(text: string): string {
  return text.replace(HIDDEN_GLOBAL, (char) => `\\u${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
}

function excerptAround(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 20);
  const cut = text.slice(start, Math.max(index + length, start) + 40);
  const shown = visible(cut);
  return shown.length > EXCERPT_LENGTH ? `${shown.slice(0, EXCERPT_LENGTH - 1)}…` : shown;
}

function screenText(text: string, field: string, findings: DefinitionFinding[]): void {
  const hidden = HIDDEN.exec(text);
  if (hidden) findings.push({ kind: 'hidden-characters', field, excerpt: excerptAround(text, hidden.index, 1) });
  // Hidden characters must not split a phrase out of the rules' sight: match on the text without them, normalised.
  const plain = text.replace(HIDDEN_GLOBAL, '').normalize('NFKC');
  for (const rule of TEXT_RULES) {
    const match = rule.pattern.exec(plain);
    if (match) findings.push({ kind: rule.kind, field, excerpt: excerptAround(plain, match.index, match[0].length) });
  }
}

/**
 * Every finding in a definition: its title, description and annotations, and every string (and
 * property name) in its input and output schemas, parameter descriptions included. Empty when
 * the definition looks clean.
 */
export function screenDefinition(definition: PinnedDefinition): DefinitionFinding[] {
  const findings: DefinitionFinding[] = [];
  let budget = MAX_STRINGS;
  const walk = (value: unknown, field: string, depth: number): void => {
    if (budget <= 0 || findings.length >= MAX_FINDINGS) return;
    if (typeof value === 'string') {
      budget -= 1;
      screenText(value, field, findings);
      return;
    }
    if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return;
    const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value);
    for (const [key, child] of entries) {
      // Paths spell hidden characters out too: they end up in audit records and an admin's review.
      const path = field ? `${field}.${visible(key)}` : visible(key);
      if (!Array.isArray(value) && HIDDEN.test(key)) {
        findings.push({ kind: 'hidden-characters', field: path, excerpt: visible(key).slice(0, EXCERPT_LENGTH) });
      }
      walk(child, path, depth + 1);
    }
  };
  walk(
    {
      name: definition.name,
      title: definition.title,
      description: definition.description,
      annotations: definition.annotations,
      inputSchema: definition.inputSchema,
      outputSchema: definition.outputSchema,
    },
    '',
    0,
  );
  return findings.slice(0, MAX_FINDINGS);
}
