/**
 * The `data` payloads of a server-sent event stream, in order. Events are split at blank lines
 * (LF or CRLF); the `data:` lines of one event are joined with newlines; other fields are ignored.
 */
export async function* parseServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const dataOf = (event: string): string =>
    event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: RegExpExecArray | null;
      while ((cut = /\r?\n\r?\n/.exec(buffer))) {
        const data = dataOf(buffer.slice(0, cut.index));
        buffer = buffer.slice(cut.index + cut[0].length);
        if (data) yield data;
      }
    }
    buffer += decoder.decode();
    const last = dataOf(buffer);
    if (last) yield last;
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
