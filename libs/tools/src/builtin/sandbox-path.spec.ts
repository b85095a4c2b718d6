import { ToolError } from '../provider/tool-error';
import { parseSandboxPath } from './sandbox-path';

function refusal(raw: string): string | undefined {
  try {
    parseSandboxPath(raw);
    return undefined;
  } catch (error) {
    return (error as ToolError).code;
  }
}

describe('parseSandboxPath', () => {
  it('accepts plain relative paths and shows them back normalised', () => {
    expect(parseSandboxPath('docs/readme.md')).toEqual({ segments: ['docs', 'readme.md'], display: 'docs/readme.md' });
    expect(parseSandboxPath('./docs//nested/')).toEqual({ segments: ['docs', 'nested'], display: 'docs/nested' });
    expect(parseSandboxPath('.')).toEqual({ segments: [], display: '.' });
    expect(parseSandboxPath('...')).toEqual({ segments: ['...'], display: '...' });
    expect(parseSandboxPath('café/naïve.txt').segments).toEqual(['café', 'naïve.txt']);
    expect(parseSandboxPath('日本語/ファイル.txt').segments).toEqual(['日本語', 'ファイル.txt']);
  });

  it.each([
    ['parent directory', '../secret'],
    ['parent inside', 'docs/../../secret'],
    ['parent that would stay inside', 'docs/../docs'],
    ['absolute', '/etc/passwd'],
    ['NUL byte', 'docs/readme.md\u0000.png'],
    ['control character', 'a\u0007b'],
    ['DEL', 'a\u007fb'],
    ['C1 control', 'a\u0085b'],
    ['right-to-left override', 'invoice\u202Etxt.exe'],
    ['zero-width joiner', 'do\u200Dcs'],
    ['byte order mark', '\uFEFFdocs'],
    ['line separator', 'a\u2028b'],
    ['lone surrogate', 'a\uD800b'],
    ['one dot leader', '\u2024\u2024/secret'],
    ['fullwidth full stop', '\uFF0E\uFF0E/secret'],
    ['small full stop', '\uFE52\uFE52/secret'],
    ['ideographic full stop', 'docs\u3002md'],
    ['division slash', '..\u2215secret'],
    ['fraction slash', '..\u2044secret'],
    ['fullwidth solidus', '..\uFF0Fsecret'],
    ['big solidus', '..\u29F8secret'],
    ['backslash', '..\\secret'],
    ['fullwidth reverse solidus', '..\uFF3Csecret'],
    ['set minus', '..\u2216secret'],
    ['combining solidus overlay', 'a\u0338b'],
    ['decomposed accent (not NFC)', 'cafe\u0301.txt'],
    ['ligature (NFKC differs)', '\uFB01le.txt'],
    ['fullwidth letters', '\uFF44\uFF4F\uFF43\uFF53'],
    ['superscript digit', 'x\u00B2'],
  ])('refuses %s', (_label, raw) => {
    expect(refusal(raw)).toBe('SANDBOX_VIOLATION');
  });

  it('refuses over-long paths and names as invalid input', () => {
    expect(refusal('a/'.repeat(600))).toBe('INVALID_INPUT');
    expect(refusal('x'.repeat(256))).toBe('INVALID_INPUT');
    expect(refusal('é'.repeat(128))).toBe('INVALID_INPUT'); // 256 bytes in UTF-8
    expect(refusal('x'.repeat(255))).toBeUndefined();
  });
});
