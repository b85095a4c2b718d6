/**
 * The fetch tool's host allow-list. Entries are exact hosts (`api.example.com`, `127.0.0.1`,
 * `[::1]`) or `*.suffix`, which matches any name below the suffix but not the suffix itself.
 * Hosts compare as the URL parser normalises them (lower case, punycode, bracketed IPv6), with
 * a trailing dot ignored.
 */
export class HostAllowList {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = HostAllowList.normalise(raw);
      if (entry.startsWith('*.')) this.suffixes.push(entry.slice(1));
      else if (entry) this.exact.add(entry);
    }
  }

  static normalise(host: string): string {
    return host.trim().toLowerCase().replace(/\.$/, '');
  }

  allows(hostname: string): boolean {
    const host = HostAllowList.normalise(hostname);
    if (this.exact.has(host)) return true;
    if (host.startsWith('[')) return false;
    return this.suffixes.some((suffix) => host.endsWith(suffix) && host.length > suffix.length);
  }

  get isEmpty(): boolean {
    return this.exact.size === 0 && this.suffixes.length === 0;
  }
}
