/**
 * Progress bars (cli-progress) driven by the packages' `onProgress` events: one bar per stage, drawn on
 * `io.progress` (stderr in the binary) only when that stream is a terminal; otherwise nothing is drawn.
 */
import cliProgress from 'cli-progress';
import type { ProgressCallback, ProgressEvent } from '@vlit/core';
import type { CliIo } from './shared.js';

/** A progress reporter: feed it events; `stop` clears the bars (call it in `finally`). */
export interface ProgressBars {
  onProgress: ProgressCallback;
  /** Whether bars are being drawn (false when the stream is not a terminal). */
  readonly drawing: boolean;
  stop(): void;
}

/** Progress bars on `io.progress` when it is a TTY; a no-op reporter otherwise. */
export function createProgressBars(io: CliIo): ProgressBars {
  const stream = io.progress;
  if (!stream || (stream as { isTTY?: boolean }).isTTY !== true) return { onProgress: () => undefined, drawing: false, stop: () => undefined };
  const multi = new cliProgress.MultiBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: ' {stage} |{bar}| {value}/{total} {detail}',
      hideCursor: false,
      clearOnComplete: false,
      // A bar only when the terminal can redraw; never scheduled output to files or pipes.
      noTTYOutput: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  let stopped = false;
  return {
    drawing: true,
    onProgress(event: ProgressEvent & { detail?: string }) {
      if (stopped) return;
      const total = event.total ?? Math.max(event.done, 1);
      const payload = { stage: event.stage.padEnd(16), detail: event.detail ?? '' };
      let bar = bars.get(event.stage);
      if (!bar) {
        bar = multi.create(total, event.done, payload);
        bars.set(event.stage, bar);
      } else {
        bar.setTotal(total);
        bar.update(event.done, payload);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}

/** Run `body` with progress bars, stopping them however it ends. */
export async function withProgress<T>(io: CliIo, body: (onProgress: ProgressCallback) => Promise<T>): Promise<T> {
  const bars = createProgressBars(io);
  try {
    return await body(bars.onProgress);
  } finally {
    bars.stop();
  }
}
