import { InvalidArgumentError } from '@vlit/core';

/** One planned shard of JSONL lines. */
export interface JsonlShard {
  name: string;
  lines: string[];
  /** UTF-8 bytes including newlines. */
  bytes: number;
  firstId?: string;
  lastId?: string;
}

/**
 * Cut records into JSONL shards of at most `targetBytes` each (a record larger than the target gets
 * a shard of its own); names are `<prefix>-00000.jsonl`, ...
 */
export function* shardJsonl(records: Iterable<{ id?: string }>, options: { targetBytes: number; prefix?: string }): Generator<JsonlShard> {
  if (!(options.targetBytes > 0)) throw new InvalidArgumentError(`targetBytes must be > 0, got ${options.targetBytes}`, { details: { field: 'targetBytes' } });
  const prefix = options.prefix ?? 'shard';
  const enc = new TextEncoder();
  let n = 0;
  let cur: JsonlShard | undefined;
  const open = (): JsonlShard => ({ name: `${prefix}-${String(n++).padStart(5, '0')}.jsonl`, lines: [], bytes: 0 });
  for (const r of records) {
    const line = `${JSON.stringify(r)}\n`;
    const size = enc.encode(line).byteLength;
    if (cur && cur.lines.length && cur.bytes + size > options.targetBytes) {
      yield cur;
      cur = undefined;
    }
    cur ??= open();
    cur.lines.push(line);
    cur.bytes += size;
    cur.firstId ??= r.id;
    cur.lastId = r.id;
  }
  if (cur) yield cur;
}
