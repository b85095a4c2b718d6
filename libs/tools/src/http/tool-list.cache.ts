import { Injectable } from '@nestjs/common';
import { pageOffset, paginationOf } from '@app/core';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import type { ListToolsQueryDto } from './dto/list-tools-query.dto';
import type { ToolListDto } from './dto/tool-list.dto';
import { ToolDto } from './dto/tool.dto';

/** Distinct (filter, page) listings remembered at once; a crawler paging through cannot grow it further. */
const MAX_ENTRIES = 256;

/**
 * `GET /tools` answers, serialised once per catalogue revision and query: the listing is the same
 * for every caller allowed to read it, and turning the tool list (with its schemas) into JSON was
 * the largest single cost of that request. Kept as UTF-8 bytes: a string answer is joined to the
 * response head and encoded again on every request (a copy the size of the listing, each time).
 */
@Injectable()
export class ToolListCache {
  private revision = -1;
  private readonly entries = new Map<string, Buffer>();

  constructor(private readonly catalog: ToolCatalogService) {}

  /** `inContext`: a scope's context tools (a bound key's listing): built for the caller, not cached. */
  json(query: ListToolsQueryDto, inContext?: readonly string[]): Buffer {
    if (inContext) return Buffer.from(JSON.stringify(this.build(query, inContext)));
    if (this.revision !== this.catalog.revision) {
      this.entries.clear();
      this.revision = this.catalog.revision;
    }
    const key = `${query.category ?? ''}|${query.enabled ?? ''}|${query.page}|${query.limit}`;
    let json = this.entries.get(key);
    if (json === undefined) {
      json = Buffer.from(JSON.stringify(this.build(query)));
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, json);
    }
    return json;
  }

  private build(query: ListToolsQueryDto, ids?: readonly string[]): ToolListDto {
    const { tools, total } = this.catalog.list({
      category: query.category,
      enabled: query.enabled,
      ids,
      offset: pageOffset(query),
      limit: query.limit,
    });
    return { tools: tools.map((tool) => ToolDto.from(tool)), pagination: paginationOf(query, total) };
  }
}
