// Key-value caches for predictions and judge replies. The in-memory one lives here (browser-safe);
// the append-only JSONL file cache that survives crashes is at `@vlit/eval/node`.

/** A cache of JSON values by string key; implementations decide where values live. */
export interface KeyValueCache {
  get(key: string): Promise<unknown | undefined>;
  set(key: string, value: unknown): Promise<void>;
  /** Number of entries (for reports). */
  size(): number;
}

/** A cache held in memory (lost when the process ends). */
export function createMemoryCache(): KeyValueCache {
  const map = new Map<string, string>();
  return {
    async get(key) {
      const v = map.get(key);
      return v === undefined ? undefined : JSON.parse(v);
    },
    async set(key, value) {
      // Stored as JSON so callers cannot mutate cached values and see the change later.
      map.set(key, JSON.stringify(value));
    },
    size: () => map.size,
  };
}
