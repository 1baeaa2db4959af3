/**
 * The text side of one generated sequence, shared by `generate` and `generateBatch` so that a row of a
 * batch streams and stops exactly as the same prompt alone: decode the tokens so far, cut the text at
 * the first stop string, and stream through `onToken` only what can no longer change.
 */
import type { Tokenizer } from '@vlit/core';

/** Longest suffix of `text` that is a proper prefix of some stop string (text held back while streaming). */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(s.slice(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

/** Decoded text of a growing token sequence, ended at the first stop string and streamed as it settles. */
export class StopText {
  /** The text so far (once a stop string is found, the text before it). */
  text = '';
  private emitted = 0;
  private stopped = false;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly stops: readonly string[],
    private readonly onToken: (text: string) => void,
  ) {}

  /** Take the tokens generated so far; returns the stop string they now contain, if any (the text before it is streamed at once). */
  update(generated: readonly number[]): string | undefined {
    const full = this.tokenizer.decode(generated, { skipSpecialTokens: true });
    const hit = this.stops
      .map((s) => [s, full.indexOf(s)] as const)
      .filter(([, i]) => i >= 0)
      .sort((a, b) => a[1] - b[1])[0];
    if (hit) {
      this.text = full.slice(0, hit[1]);
      this.emit(this.text.length);
      this.stopped = true;
      return hit[0];
    }
    this.text = full;
    // Hold back an incomplete UTF-8 sequence and anything that may yet become a stop string.
    let safe = full.length - heldBack(full, this.stops);
    while (safe > this.emitted && full.charCodeAt(safe - 1) === 0xfffd) safe--;
    this.emit(safe);
    return undefined;
  }

  /** Stream the text held back for stop strings or incomplete characters (a stop string already streamed its part). */
  flush(): void {
    if (!this.stopped) this.emit(this.text.length);
  }

  private emit(end: number): void {
    if (end <= this.emitted) return;
    this.onToken(this.text.slice(this.emitted, end));
    this.emitted = end;
  }
}
