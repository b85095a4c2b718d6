import Ajv from 'ajv';
import { execFileSync } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolError } from '../provider/tool-error';
import type { ToolCallContext } from '../provider/tool-provider';
import { FilesystemSandbox } from './filesystem-sandbox';
import { FILESYSTEM_WRITE_PERMISSION, FilesystemTool } from './filesystem.tool';
import { nameMatcher } from './name-glob';
import { parseSandboxPath } from './sandbox-path';

const MAX = 1024;

function ctx(permissions: string[] = ['tools:execute'], signal: AbortSignal = new AbortController().signal): ToolCallContext {
  return { signal, userId: 'usr_test', permissions };
}
const writer = () => ctx(['tools:execute', FILESYSTEM_WRITE_PERMISSION]);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ToolError) return error.code;
    throw error;
  }
  throw new Error('expected the call to fail');
}

/** Every file and directory below `dir`, as sorted relative paths (symlinks not followed). */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    out.push(rel);
    if (entry.isDirectory()) out.push(...(await tree(join(dir, entry.name), rel)));
  }
  return out.sort();
}

describe('FilesystemTool', () => {
  let base: string;
  let root: string;
  let outside: string;
  let tool: FilesystemTool;
  let outsideBefore: string[];
  let baseBefore: string[];
  const ajv = new Ajv({ allErrors: true, strict: true });

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'tools-fs-')));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(join(outside, 'inner'), { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'top secret');
    await writeFile(join(outside, 'inner', 'secret.txt'), 'inner secret');
    tool = new FilesystemTool({ root, maxFileBytes: MAX });
    await tool.init();
    await mkdir(join(root, 'docs', 'nested', 'deeper'), { recursive: true });
    await writeFile(join(root, 'docs', 'readme.md'), '# Hello\nwörld\n');
    await writeFile(join(root, 'docs', 'nested', 'notes.md'), 'notes');
    await writeFile(join(root, 'docs', 'nested', 'deeper', 'deep.md'), 'deep');
    await writeFile(join(root, 'data.json'), '{"a":1}');
    await writeFile(join(root, 'big.txt'), 'x'.repeat(MAX + 1));
    await writeFile(join(root, 'binary.bin'), Buffer.from([0xff, 0xfe, 0x00, 0xc3]));
    await symlink(join(root, 'docs'), join(root, 'link-in'));
    await symlink(outside, join(root, 'link-out'));
    await symlink(join(outside, 'secret.txt'), join(root, 'file-link-out'));
    await symlink('../../outside', join(root, 'docs', 'escape'));
    await symlink(join(outside, 'nothing-here.txt'), join(root, 'dangling-out'));
    outsideBefore = await tree(outside);
    baseBefore = (await readdir(base)).sort();
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function expectOutsideUntouched(): Promise<void> {
    expect(await tree(outside)).toEqual(outsideBefore);
    expect((await readdir(base)).sort()).toEqual(baseBefore);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
  }

  function expectOutputValid(output: unknown): void {
    const validate = ajv.compile(tool.definition.outputSchema);
    const valid = validate(output);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  }

  describe('reading', () => {
    it('lists a directory with entry types, never following symlinks', async () => {
      const output = (await tool.execute({ operation: 'list' }, ctx())) as {
        path: string;
        entries: Array<{ name: string; type: string }>;
        truncated: boolean;
      };
      expectOutputValid(output);
      expect(output.path).toBe('.');
      expect(output.truncated).toBe(false);
      expect(output.entries.map((e) => [e.name, e.type])).toEqual([
        ['big.txt', 'file'],
        ['binary.bin', 'file'],
        ['dangling-out', 'symlink'],
        ['data.json', 'file'],
        ['docs', 'directory'],
        ['file-link-out', 'symlink'],
        ['link-in', 'symlink'],
        ['link-out', 'symlink'],
      ]);
      const limited = (await tool.execute({ operation: 'list', limit: 2 }, ctx())) as { entries: unknown[]; truncated: boolean };
      expect(limited.entries).toHaveLength(2);
      expect(limited.truncated).toBe(true);
    });

    it('stats files and directories', async () => {
      const file = await tool.execute({ operation: 'stat', path: 'docs/readme.md' }, ctx());
      expectOutputValid(file);
      expect(file).toMatchObject({ operation: 'stat', path: 'docs/readme.md', type: 'file', size: Buffer.byteLength('# Hello\nwörld\n') });
      expect(await tool.execute({ operation: 'stat', path: 'docs' }, ctx())).toMatchObject({ type: 'directory' });
    });

    it('reads UTF-8 text, also through a symlink that stays inside', async () => {
      const output = await tool.execute({ operation: 'read', path: 'docs/readme.md' }, ctx());
      expectOutputValid(output);
      expect(output).toEqual({ operation: 'read', path: 'docs/readme.md', content: '# Hello\nwörld\n', size: 15, encoding: 'utf-8' });
      expect(await tool.execute({ operation: 'read', path: 'link-in/nested/notes.md' }, ctx())).toMatchObject({ content: 'notes' });
    });

    it('refuses files over the limit, binary files, directories and missing files', async () => {
      expect(await codeOf(tool.execute({ operation: 'read', path: 'big.txt' }, ctx()))).toBe('TOO_LARGE');
      expect(await codeOf(tool.execute({ operation: 'read', path: 'binary.bin' }, ctx()))).toBe('INVALID_INPUT');
      expect(await codeOf(tool.execute({ operation: 'read', path: 'docs' }, ctx()))).toBe('INVALID_INPUT');
      expect(await codeOf(tool.execute({ operation: 'read', path: 'missing.txt' }, ctx()))).toBe('NOT_FOUND');
      expect(await codeOf(tool.execute({ operation: 'list', path: 'data.json' }, ctx()))).toBe('INVALID_INPUT');
    });

    it('refuses special files without blocking on them', async () => {
      execFileSync('mkfifo', [join(root, 'pipe')]);
      // Opening a FIFO with no writer blocks for ever: answering at all is the behaviour under test.
      expect(await codeOf(tool.execute({ operation: 'read', path: 'pipe' }, ctx()))).toBe('INVALID_INPUT');
      expect(await tool.execute({ operation: 'stat', path: 'pipe' }, ctx())).toMatchObject({ type: 'other' });
      expect(await codeOf(tool.execute({ operation: 'write', path: 'pipe', content: 'x' }, writer()))).toBe('ALREADY_EXISTS');
    });

    it('searches names by glob or substring within depth and result bounds, without descending symlinks', async () => {
      const output = (await tool.execute({ operation: 'search', pattern: '*.MD' }, ctx())) as {
        matches: Array<{ path: string }>;
        truncated: boolean;
      };
      expectOutputValid(output);
      expect(output.matches.map((m) => m.path).sort()).toEqual(['docs/nested/deeper/deep.md', 'docs/nested/notes.md', 'docs/readme.md']);
      const shallow = (await tool.execute({ operation: 'search', pattern: '*.md', maxDepth: 1 }, ctx())) as {
        matches: Array<{ path: string }>;
      };
      expect(shallow.matches.map((m) => m.path).sort()).toEqual(['docs/readme.md']);
      const substring = (await tool.execute({ operation: 'search', path: 'docs', pattern: 'NOTE' }, ctx())) as {
        matches: Array<{ path: string; type: string }>;
      };
      expect(substring.matches).toEqual([{ path: 'docs/nested/notes.md', type: 'file' }]);
      const bounded = (await tool.execute({ operation: 'search', pattern: '*', maxResults: 3 }, ctx())) as {
        matches: unknown[];
        truncated: boolean;
      };
      expect(bounded.matches).toHaveLength(3);
      expect(bounded.truncated).toBe(true);
      const secrets = (await tool.execute({ operation: 'search', pattern: 'secret' }, ctx())) as { matches: unknown[] };
      expect(secrets.matches).toEqual([]);
    });

    it('answers a pathological glob at once (no backtracking regex)', async () => {
      await writeFile(join(root, 'docs', 'a'.repeat(52)), '');
      const output = (await tool.execute({ operation: 'search', pattern: '*a*a*a*a*a*a*a*b' }, ctx())) as { matches: unknown[] };
      expect(output.matches).toEqual([]);
    });

    it('stops a long search soon after its signal fires, yielding to timers while it matches', async () => {
      const many = join(root, 'many');
      await mkdir(many);
      for (let i = 0; i < 3000; i += 1) await writeFile(join(many, `${'a'.repeat(240)}${i}`), '');
      const heavy = nameMatcher(`${'*a'.repeat(127)}*b`);
      let matched = 0;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new ToolError('TIMEOUT', 'stopped')), 20);
      const search = new FilesystemSandbox({ root, maxFileBytes: MAX }).search(
        parseSandboxPath('many'),
        (name) => {
          matched += 1;
          return heavy(name);
        },
        1,
        100,
        controller.signal,
      );
      expect(await codeOf(search)).toBe('TIMEOUT');
      clearTimeout(timer);
      const atStop = matched;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(matched).toBe(atStop);
      expect(atStop).toBeLessThan(3000);
    });
  });

  describe('writing', () => {
    it('needs the write permission and creates nothing without it', async () => {
      expect(await codeOf(tool.execute({ operation: 'write', path: 'new.txt', content: 'x' }, ctx()))).toBe('PERMISSION_DENIED');
      expect(await readdir(root)).not.toContain('new.txt');
    });

    it('creates, refuses to clobber unless asked, overwrites atomically and creates directories on request', async () => {
      const created = await tool.execute(
        { operation: 'write', path: 'notes/today.txt', content: 'hello', createDirectories: true },
        writer(),
      );
      expectOutputValid(created);
      expect(created).toEqual({ operation: 'write', path: 'notes/today.txt', size: 5, created: true });
      expect(await readFile(join(root, 'notes', 'today.txt'), 'utf8')).toBe('hello');

      expect(await codeOf(tool.execute({ operation: 'write', path: 'notes/today.txt', content: 'again' }, writer()))).toBe(
        'ALREADY_EXISTS',
      );
      expect(
        await tool.execute({ operation: 'write', path: 'notes/today.txt', content: 'again', overwrite: true }, writer()),
      ).toMatchObject({ created: false });
      expect(await readFile(join(root, 'notes', 'today.txt'), 'utf8')).toBe('again');
      expect((await readdir(join(root, 'notes'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);

      expect(await codeOf(tool.execute({ operation: 'write', path: 'missing/dir/x.txt', content: 'x' }, writer()))).toBe('NOT_FOUND');
      expect(await codeOf(tool.execute({ operation: 'write', path: 'docs', content: 'x', overwrite: true }, writer()))).toBe(
        'INVALID_INPUT',
      );
      expect(await codeOf(tool.execute({ operation: 'write', path: 'big-new.txt', content: 'é'.repeat(MAX / 2 + 1) }, writer()))).toBe(
        'TOO_LARGE',
      );
      expect(await readdir(root)).not.toContain('big-new.txt');
    });

    it('writes through a symlink only when it points at a file inside the root', async () => {
      await symlink(join(root, 'docs', 'readme.md'), join(root, 'readme-link'));
      expect(await codeOf(tool.execute({ operation: 'write', path: 'readme-link', content: 'updated' }, writer()))).toBe('ALREADY_EXISTS');
      await tool.execute({ operation: 'write', path: 'readme-link', content: 'updated', overwrite: true }, writer());
      expect(await readFile(join(root, 'docs', 'readme.md'), 'utf8')).toBe('updated');
      expect((await lstat(join(root, 'readme-link'))).isSymbolicLink()).toBe(true);
      for (const overwrite of [false, true]) {
        for (const path of ['file-link-out', 'dangling-out']) {
          expect([path, await codeOf(tool.execute({ operation: 'write', path, content: 'pwned', overwrite }, writer()))]).toEqual([
            path,
            'SANDBOX_VIOLATION',
          ]);
        }
      }
      await expectOutsideUntouched();
    });
  });

  describe('escapes', () => {
    const ESCAPES: Array<[string, string]> = [
      ['parent directory', '../outside/secret.txt'],
      ['deep parent', '../../../../../../etc/passwd'],
      ['parent after a directory', 'docs/../../outside/secret.txt'],
      ['absolute path', '/etc/passwd'],
      ['NUL byte', 'docs/readme.md\u0000'],
      ['directory symlink pointing out', 'link-out/secret.txt'],
      ['file symlink pointing out', 'file-link-out'],
      ['relative symlink out in an intermediate directory', 'docs/escape/inner/secret.txt'],
      ['fullwidth dots', '\uFF0E\uFF0E/outside/secret.txt'],
      ['one dot leaders', '\u2024\u2024/outside/secret.txt'],
      ['division slash', '..\u2215outside\u2215secret.txt'],
      ['fullwidth solidus', '..\uFF0Foutside\uFF0Fsecret.txt'],
      ['backslash', '..\\outside\\secret.txt'],
      ['control character', 'docs/\u0001readme.md'],
      ['bidi override', 'docs/\u202Edm.emdaer'],
    ];

    it.each(ESCAPES)('refuses %s for every operation and leaves the outside untouched', async (_label, path) => {
      for (const input of [
        { operation: 'read', path },
        { operation: 'stat', path },
        { operation: 'list', path },
        { operation: 'search', path, pattern: '*' },
      ]) {
        expect([input.operation, await codeOf(tool.execute(input, ctx()))]).toEqual([input.operation, 'SANDBOX_VIOLATION']);
      }
      for (const target of [path, `${path}/new.txt`]) {
        for (const extra of [{}, { overwrite: true }, { createDirectories: true, overwrite: true }]) {
          const code = await codeOf(tool.execute({ operation: 'write', path: target, content: 'pwned', ...extra }, writer()));
          expect([target, extra, code]).toEqual([target, extra, 'SANDBOX_VIOLATION']);
        }
      }
      await expectOutsideUntouched();
    });

    it('refuses to read or stat a hard link to a file outside, and any file with a second link', async () => {
      await link(join(outside, 'secret.txt'), join(root, 'docs', 'hard-out.txt'));
      await link(join(root, 'docs', 'readme.md'), join(root, 'docs', 'readme-twin.md'));
      for (const path of ['docs/hard-out.txt', 'docs/readme-twin.md', 'docs/readme.md']) {
        for (const operation of ['read', 'stat']) {
          expect([path, operation, await codeOf(tool.execute({ operation, path }, ctx()))]).toEqual([path, operation, 'SANDBOX_VIOLATION']);
        }
      }
      // Overwriting replaces the link itself; the outside file keeps its contents.
      await tool.execute({ operation: 'write', path: 'docs/hard-out.txt', content: 'replaced', overwrite: true }, writer());
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
      expect(await tool.execute({ operation: 'read', path: 'docs/hard-out.txt' }, ctx())).toMatchObject({ content: 'replaced' });
      await expectOutsideUntouched();
    });

    it('refuses the absolute path of the sandbox itself', async () => {
      expect(await codeOf(tool.execute({ operation: 'read', path: join(root, 'docs', 'readme.md') }, ctx()))).toBe('SANDBOX_VIOLATION');
    });

    it('refuses a directory that was replaced by a symlink pointing out before the write', async () => {
      await mkdir(join(root, 'uploads'));
      await rename(join(root, 'uploads'), join(base, 'moved-away'));
      await symlink(outside, join(root, 'uploads'));
      baseBefore = (await readdir(base)).sort();
      expect(await codeOf(tool.execute({ operation: 'write', path: 'uploads/new.txt', content: 'pwned' }, writer()))).toBe(
        'SANDBOX_VIOLATION',
      );
      expect(
        await codeOf(
          tool.execute({ operation: 'write', path: 'uploads/inner/new.txt', content: 'pwned', createDirectories: true }, writer()),
        ),
      ).toBe('SANDBOX_VIOLATION');
      await expectOutsideUntouched();
    });

    it('does not create directories outside through a symlink', async () => {
      expect(
        await codeOf(tool.execute({ operation: 'write', path: 'link-out/made/x.txt', content: 'x', createDirectories: true }, writer())),
      ).toBe('SANDBOX_VIOLATION');
      expect(
        await codeOf(tool.execute({ operation: 'write', path: 'dangling-out/x.txt', content: 'x', createDirectories: true }, writer())),
      ).toBe('SANDBOX_VIOLATION');
      await expectOutsideUntouched();
    });

    describe('symlink swapped in after verification (the race)', () => {
      let swapped: boolean;
      beforeEach(() => (swapped = false));
      afterEach(() => expect(swapped).toBe(true));

      /** A tool whose sandbox runs `swap` once, between verifying `trigger`'s real path and opening it. */
      function racingTool(trigger: string, swap: () => Promise<void>): FilesystemTool {
        return new FilesystemTool({
          root,
          maxFileBytes: MAX,
          beforeOpen: async (real) => {
            if (!swapped && real === join(root, trigger)) {
              swapped = true;
              await swap();
            }
          },
        });
      }

      it('refuses a write when the parent directory becomes a symlink', async () => {
        await mkdir(join(root, 'uploads'));
        const racer = racingTool('uploads', async () => {
          await rename(join(root, 'uploads'), join(root, 'uploads-old'));
          await symlink(outside, join(root, 'uploads'));
        });
        expect(
          await codeOf(racer.execute({ operation: 'write', path: 'uploads/new.txt', content: 'pwned', overwrite: true }, writer())),
        ).toBe('SANDBOX_VIOLATION');
        await expectOutsideUntouched();
      });

      it('refuses a write when an intermediate directory becomes a symlink', async () => {
        await mkdir(join(root, 'a', 'inner'), { recursive: true });
        const racer = racingTool('a/inner', async () => {
          await rename(join(root, 'a'), join(root, 'a-old'));
          await symlink(outside, join(root, 'a')); // outside/inner exists, so a/inner now opens outside
        });
        expect(await codeOf(racer.execute({ operation: 'write', path: 'a/inner/new.txt', content: 'pwned' }, writer()))).toBe(
          'SANDBOX_VIOLATION',
        );
        await expectOutsideUntouched();
      });

      it('refuses a read when an intermediate directory becomes a symlink', async () => {
        await mkdir(join(root, 'a', 'inner'), { recursive: true });
        await writeFile(join(root, 'a', 'inner', 'secret.txt'), 'inside');
        const racer = racingTool('a/inner/secret.txt', async () => {
          await rename(join(root, 'a'), join(root, 'a-old'));
          await symlink(outside, join(root, 'a'));
        });
        expect(await codeOf(racer.execute({ operation: 'read', path: 'a/inner/secret.txt' }, ctx()))).toBe('SANDBOX_VIOLATION');
      });

      it('refuses a read when the file itself becomes a symlink', async () => {
        await writeFile(join(root, 'plain.txt'), 'inside');
        const racer = racingTool('plain.txt', async () => {
          await rm(join(root, 'plain.txt'));
          await symlink(join(outside, 'secret.txt'), join(root, 'plain.txt'));
        });
        expect(await codeOf(racer.execute({ operation: 'read', path: 'plain.txt' }, ctx()))).toBe('SANDBOX_VIOLATION');
      });

      it('is also caught without /proc, by comparing the opened inode', async () => {
        await mkdir(join(root, 'a', 'inner'), { recursive: true });
        await writeFile(join(root, 'a', 'inner', 'secret.txt'), 'inside');
        const sandbox = new FilesystemSandbox({
          root,
          maxFileBytes: MAX,
          beforeOpen: async (real) => {
            if (!swapped && real === join(root, 'a', 'inner', 'secret.txt')) {
              swapped = true;
              await rename(join(root, 'a'), join(root, 'a-old'));
              await symlink(outside, join(root, 'a'));
            }
          },
        });
        (sandbox as unknown as { procFdPromise: Promise<boolean> }).procFdPromise = Promise.resolve(false);
        expect(await codeOf(sandbox.read(parseSandboxPath('a/inner/secret.txt'), new AbortController().signal))).toBe('SANDBOX_VIOLATION');
        expect((await sandbox.read(parseSandboxPath('a-old/inner/secret.txt'), new AbortController().signal)).content).toBe('inside');
      });
    });
  });

  it('stops when the call is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    expect(await codeOf(tool.execute({ operation: 'list' }, ctx(['tools:execute'], controller.signal)))).toBe('ABORTED');
    expect(
      await codeOf(tool.execute({ operation: 'write', path: 'x.txt', content: 'x' }, { ...writer(), signal: controller.signal })),
    ).toBe('ABORTED');
    expect(await readdir(root)).not.toContain('x.txt');
  });

  it('creates the sandbox root at start', async () => {
    const fresh = join(base, 'fresh', 'sandbox');
    await new FilesystemTool({ root: fresh, maxFileBytes: MAX }).init();
    expect((await lstat(fresh)).isDirectory()).toBe(true);
  });
});
