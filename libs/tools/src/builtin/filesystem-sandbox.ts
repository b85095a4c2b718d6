import { constants as fsConstants, Dirent, Stats } from 'node:fs';
import { FileHandle, lstat, mkdir, open, opendir, readlink, realpath, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, sep } from 'node:path';
import { ToolError, ToolErrorCode, throwIfAborted } from '../provider/tool-error';
import { SandboxPath } from './sandbox-path';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fsConstants;

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface SandboxEntry {
  name: string;
  type: EntryType;
  size: number;
  modifiedAt: string;
}

export interface SandboxStat {
  type: EntryType;
  size: number;
  modifiedAt: string;
  createdAt: string;
}

export interface SearchMatch {
  path: string;
  type: EntryType;
}

export interface SandboxOptions {
  root: string;
  maxFileBytes: number;
  /**
   * Test seam: runs after a path has been verified and before it is opened, so tests can swap a
   * directory for a symlink in exactly the window an attacker would race for.
   */
  beforeOpen?: (realPath: string) => void | Promise<void>;
}

/** A directory or file opened after verification, and a path that reaches it without re-resolving names. */
interface Pinned {
  handle: FileHandle;
  /** `/proc/self/fd/N` where available (the kernel resolves it to the opened inode), else the verified real path. */
  path: string;
}

/** Largest number of directory entries one search looks at before it stops and says so. */
const SEARCH_ENTRY_BUDGET = 100_000;
/**
 * Longest stretch a search runs on the event loop before it yields: matching is CPU work, and a
 * timer (the call's timeout) or another request must get its turn within this.
 */
const SEARCH_SLICE_MS = 10;
const READ_CHUNK = 64 * 1024;

function typeOf(stats: Stats | Dirent): EntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

/** Lets timers and I/O run (setImmediate: after pending I/O callbacks, unlike a resolved promise). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * All file access of the filesystem tool. Paths arrive already parsed (see parseSandboxPath);
 * here every one is resolved to its real path and checked against the real root, and the file
 * or directory is then opened with O_NOFOLLOW and checked again through its open descriptor, so
 * a symlink swapped in between the check and the use is caught rather than followed. Writes
 * happen through a descriptor of the verified parent directory (`/proc/self/fd/N/name`, the
 * `openat` of Node), so no path component can be redirected after verification.
 */
export class FilesystemSandbox {
  private rootPromise: Promise<string> | undefined;
  private procFdPromise: Promise<boolean> | undefined;

  constructor(private readonly options: SandboxOptions) {}

  /** Creates the root if needed and returns its real path. */
  realRoot(): Promise<string> {
    this.rootPromise ??= (async () => {
      await mkdir(this.options.root, { recursive: true, mode: 0o750 });
      return realpath(this.options.root);
    })();
    this.rootPromise.catch(() => (this.rootPromise = undefined));
    return this.rootPromise;
  }

  async list(path: SandboxPath, limit: number, signal: AbortSignal): Promise<{ entries: SandboxEntry[]; truncated: boolean }> {
    const dir = await this.openExisting(path, O_RDONLY | O_DIRECTORY);
    try {
      const entries: SandboxEntry[] = [];
      let truncated = false;
      const iterator = await opendir(dir.path, { bufferSize: 128 });
      try {
        for await (const dirent of iterator) {
          throwIfAborted(signal);
          if (entries.length >= limit) {
            truncated = true;
            break;
          }
          const stats = await lstat(`${dir.path}/${dirent.name}`).catch(() => undefined);
          if (!stats) continue; // removed while listing
          entries.push({ name: dirent.name, type: typeOf(stats), size: stats.size, modifiedAt: stats.mtime.toISOString() });
        }
      } finally {
        await iterator.close().catch(() => undefined);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { entries, truncated };
    } catch (error) {
      throw this.translate(error, path);
    } finally {
      await dir.handle.close();
    }
  }

  async stat(path: SandboxPath): Promise<SandboxStat> {
    const target = await this.openExisting(path, O_RDONLY);
    try {
      const stats = await target.handle.stat();
      this.refuseHardLink(stats, path);
      return { type: typeOf(stats), size: stats.size, modifiedAt: stats.mtime.toISOString(), createdAt: stats.birthtime.toISOString() };
    } catch (error) {
      throw this.translate(error, path);
    } finally {
      await target.handle.close();
    }
  }

  async read(path: SandboxPath, signal: AbortSignal): Promise<{ content: string; size: number }> {
    const max = this.options.maxFileBytes;
    const target = await this.openExisting(path, O_RDONLY);
    try {
      const stats = await target.handle.stat();
      if (stats.isDirectory()) throw new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is a directory`);
      if (!stats.isFile()) throw new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is not a regular file`);
      this.refuseHardLink(stats, path);
      if (stats.size > max) throw new ToolError(ToolErrorCode.TOO_LARGE, `${path.display} is ${stats.size} bytes; the limit is ${max}`);
      // Read at most one byte past the limit: the file may have grown since fstat.
      const buffer = Buffer.alloc(Math.min(max + 1, Math.max(stats.size + 1, 1)));
      let length = 0;
      for (;;) {
        throwIfAborted(signal);
        if (length === buffer.length) break;
        const { bytesRead } = await target.handle.read(buffer, length, Math.min(READ_CHUNK, buffer.length - length), length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > max) throw new ToolError(ToolErrorCode.TOO_LARGE, `${path.display} is larger than ${max} bytes`);
      let content: string;
      try {
        content = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
      } catch {
        throw new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is not UTF-8 text`);
      }
      return { content, size: length };
    } catch (error) {
      throw this.translate(error, path);
    } finally {
      await target.handle.close();
    }
  }

  /**
   * Breadth-first search by name below `path`. Symlinks are reported, never descended; every
   * directory is opened through its verified parent's descriptor with O_NOFOLLOW.
   */
  async search(
    path: SandboxPath,
    matches: (name: string) => boolean,
    maxDepth: number,
    maxResults: number,
    signal: AbortSignal,
  ): Promise<{ matches: SearchMatch[]; truncated: boolean }> {
    const start = await this.openExisting(path, O_RDONLY | O_DIRECTORY);
    const found: SearchMatch[] = [];
    const queue: Array<{ dir: Pinned; prefix: string; depth: number }> = [{ dir: start, prefix: path.segments.join('/'), depth: 0 }];
    let budget = SEARCH_ENTRY_BUDGET;
    let truncated = false;
    let sliceStart = performance.now();
    try {
      while (queue.length > 0 && !truncated) {
        const { dir, prefix, depth } = queue.shift()!;
        try {
          const iterator = await opendir(dir.path, { bufferSize: 128 });
          try {
            for await (const dirent of iterator) {
              if (performance.now() - sliceStart > SEARCH_SLICE_MS) {
                await yieldToEventLoop();
                sliceStart = performance.now();
              }
              throwIfAborted(signal);
              if (--budget < 0 || found.length >= maxResults) {
                truncated = true;
                break;
              }
              const relative = prefix ? `${prefix}/${dirent.name}` : dirent.name;
              if (matches(dirent.name)) found.push({ path: relative, type: typeOf(dirent) });
              if (dirent.isDirectory() && depth < maxDepth) {
                const child = await this.openChildDirectory(dir, dirent.name).catch(() => undefined);
                if (child) queue.push({ dir: child, prefix: relative, depth: depth + 1 });
              }
            }
          } finally {
            await iterator.close().catch(() => undefined);
          }
        } finally {
          await dir.handle.close();
        }
      }
      return { matches: found, truncated };
    } catch (error) {
      throw this.translate(error, path);
    } finally {
      for (const { dir } of queue) await dir.handle.close().catch(() => undefined);
    }
  }

  /**
   * Writes `content` to `path`. With `overwrite` the bytes go to a temporary file in the verified
   * directory and are renamed over the target (atomic; a symlink or hard link at the target is
   * replaced, never written through). Without it the target is created with O_EXCL|O_NOFOLLOW.
   */
  async write(
    path: SandboxPath,
    content: Buffer,
    options: { createDirectories: boolean; overwrite: boolean },
    signal: AbortSignal,
    resolved?: string[],
  ): Promise<{ created: boolean }> {
    const segments = resolved ?? path.segments;
    if (segments.length === 0) throw new ToolError(ToolErrorCode.INVALID_INPUT, 'cannot write to the sandbox root');
    const name = segments[segments.length - 1];
    const dir = await this.openDirectoryForWrite(path, segments, options.createDirectories, signal);
    let temporary: string | undefined;
    try {
      const target = `${dir.path}/${name}`;
      const existing = await lstat(target).catch((error) => {
        if (errnoOf(error) === 'ENOENT') return undefined;
        throw error;
      });
      if (existing?.isSymbolicLink()) {
        // Like reads, writes follow a symlink only when its target is an existing file inside the root;
        // the target's real path is then written through the same checks, once.
        const root = await this.realRoot();
        const real = await realpath(target).catch(() => undefined);
        if (resolved || real === undefined || !this.isInside(real, root)) throw this.outside(path);
        await dir.handle.close();
        return await this.write(path, content, options, signal, real.slice(root.length).split(sep).filter(Boolean));
      }
      if (existing?.isDirectory()) throw new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is a directory`);
      if (existing && !options.overwrite) throw new ToolError(ToolErrorCode.ALREADY_EXISTS, `${path.display} already exists`);
      throwIfAborted(signal);

      if (!options.overwrite) {
        const file = await open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o640);
        try {
          await file.writeFile(content);
        } finally {
          await file.close();
        }
        return { created: true };
      }

      temporary = `${dir.path}/.mcp-write-${randomBytes(8).toString('hex')}.tmp`;
      const file = await open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o640);
      try {
        await file.writeFile(content);
      } finally {
        await file.close();
      }
      throwIfAborted(signal);
      await rename(temporary, target);
      temporary = undefined;
      return { created: existing === undefined };
    } catch (error) {
      if (errnoOf(error) === 'EEXIST') throw new ToolError(ToolErrorCode.ALREADY_EXISTS, `${path.display} already exists`);
      throw this.translate(error, path);
    } finally {
      if (temporary) await unlink(temporary).catch(() => undefined);
      await dir.handle.close().catch(() => undefined);
    }
  }

  /** Opens an existing path after checking that its real path lies inside the real root. */
  private async openExisting(path: SandboxPath, flags: number): Promise<Pinned> {
    const root = await this.realRoot();
    let real: string;
    try {
      real = await realpath(join(root, ...path.segments));
    } catch (error) {
      throw this.translate(error, path);
    }
    if (!this.isInside(real, root)) throw this.outside(path);
    return this.openVerified(real, flags, path);
  }

  /**
   * Resolves the parent directory of a write one component at a time (creating missing ones when
   * asked), checking each real path against the root, and returns it opened and verified.
   */
  private async openDirectoryForWrite(path: SandboxPath, segments: string[], create: boolean, signal: AbortSignal): Promise<Pinned> {
    const root = await this.realRoot();
    let current = root;
    for (const segment of segments.slice(0, -1)) {
      throwIfAborted(signal);
      const next = join(current, segment);
      let real = await realpath(next).catch((error) => {
        if (errnoOf(error) === 'ENOENT' && create) return undefined;
        throw this.translate(error, path);
      });
      if (real === undefined) {
        // mkdir through the verified parent's descriptor: a swapped-in symlink cannot redirect it.
        const parent = await this.openVerified(current, O_RDONLY | O_DIRECTORY, path);
        let existed = false;
        try {
          await mkdir(`${parent.path}/${segment}`, { mode: 0o750 }).catch((error) => {
            if (errnoOf(error) !== 'EEXIST') throw error;
            existed = true;
          });
        } catch (error) {
          throw this.translate(error, path);
        } finally {
          await parent.handle.close();
        }
        real = await realpath(next).catch((error) => {
          // Something was there that realpath cannot resolve: a dangling symlink, whose target we cannot vouch for.
          throw existed && errnoOf(error) === 'ENOENT' ? this.outside(path) : this.translate(error, path);
        });
      }
      if (!this.isInside(real, root)) throw this.outside(path);
      current = real;
    }
    return this.openVerified(current, O_RDONLY | O_DIRECTORY, path);
  }

  /** Opens a child directory through its parent's pinned path; O_NOFOLLOW refuses a symlink. */
  private async openChildDirectory(parent: Pinned, name: string): Promise<Pinned> {
    const handle = await open(`${parent.path}/${name}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK);
    const root = await this.realRoot();
    try {
      return await this.pin(handle, `${parent.path}/${name}`, root, name);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Opens a verified real path with O_NOFOLLOW, then checks where the descriptor really points:
   * if a component was swapped for a symlink after verification, the open either fails (last
   * component) or lands outside the root (earlier component) and is refused.
   */
  private async openVerified(real: string, flags: number, path: SandboxPath): Promise<Pinned> {
    const root = await this.realRoot();
    await this.options.beforeOpen?.(real);
    let handle: FileHandle;
    try {
      handle = await open(real, flags | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      const code = errnoOf(error);
      // The path was a real directory/file a moment ago; a symlink there now means it was swapped.
      if (code === 'ELOOP') throw this.outside(path);
      if (code === 'ENOTDIR') {
        if (
          await lstat(real).then(
            (s) => s.isSymbolicLink(),
            () => false,
          )
        )
          throw this.outside(path);
        throw new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is not a directory`);
      }
      throw this.translate(error, path);
    }
    try {
      return await this.pin(handle, real, root, path.display);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  private async pin(handle: FileHandle, openedAs: string, root: string, display: string): Promise<Pinned> {
    const refused = () => new ToolError(ToolErrorCode.SANDBOX_VIOLATION, `${display} resolves outside the sandbox`);
    if (await this.hasProcFd()) {
      const procPath = `/proc/self/fd/${handle.fd}`;
      const actual = await readlink(procPath);
      if (!this.isInside(actual, root)) throw refused();
      return { handle, path: procPath };
    }
    // No /proc: compare the opened inode with what the path names now, after re-checking the path.
    const [opened, named, real] = await Promise.all([handle.stat(), stat(openedAs), realpath(openedAs)]);
    if (opened.dev !== named.dev || opened.ino !== named.ino || !this.isInside(real, root)) throw refused();
    return { handle, path: real };
  }

  private hasProcFd(): Promise<boolean> {
    this.procFdPromise ??= (async () => {
      const root = await this.realRoot();
      const handle = await open(root, O_RDONLY | O_DIRECTORY);
      try {
        return (await readlink(`/proc/self/fd/${handle.fd}`)) === root;
      } catch {
        return false;
      } finally {
        await handle.close();
      }
    })();
    return this.procFdPromise;
  }

  /**
   * A regular file with more than one name may be a hard link to a file outside the root (links
   * need no access to the target's directory, and realpath cannot tell one name from another), so
   * its contents and metadata are not served. Checked on the opened descriptor, so the answer is
   * about the very inode that would be read.
   */
  private refuseHardLink(stats: Stats, path: SandboxPath): void {
    if (stats.isFile() && stats.nlink > 1) {
      throw new ToolError(
        ToolErrorCode.SANDBOX_VIOLATION,
        `${path.display} has more than one hard link and may name a file outside the sandbox`,
      );
    }
  }

  private isInside(real: string, root: string): boolean {
    return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
  }

  private outside(path: SandboxPath): ToolError {
    return new ToolError(ToolErrorCode.SANDBOX_VIOLATION, `${path.display} resolves outside the sandbox`);
  }

  /** Maps file-system errors to tool errors that name only the caller's relative path. */
  private translate(error: unknown, path: SandboxPath): unknown {
    if (error instanceof ToolError) return error;
    switch (errnoOf(error)) {
      case 'ENOENT':
      case 'ENOTDIR':
        return new ToolError(ToolErrorCode.NOT_FOUND, `${path.display} does not exist`);
      case 'ELOOP':
        return new ToolError(ToolErrorCode.SANDBOX_VIOLATION, `${path.display} is a symbolic link loop or was swapped during the call`);
      case 'EACCES':
      case 'EPERM':
        return new ToolError(ToolErrorCode.PERMISSION_DENIED, `the server may not access ${path.display}`);
      case 'EISDIR':
        return new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is a directory`);
      case 'ENXIO':
        return new ToolError(ToolErrorCode.INVALID_INPUT, `${path.display} is not a regular file`);
      case 'ENAMETOOLONG':
        return new ToolError(ToolErrorCode.INVALID_INPUT, 'path is too long');
      case 'ENOSPC':
      case 'EDQUOT':
        return new ToolError(ToolErrorCode.TOO_LARGE, 'no space left in the sandbox');
      default:
        return error;
    }
  }
}
