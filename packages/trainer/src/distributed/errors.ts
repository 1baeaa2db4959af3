/**
 * The typed error of a failed distributed run: which rank died, how, and the last lines it logged.
 */
import { BackendError, isVlitError } from '@vlit/core';

/** `details.reason` of a TorchrunWorkerError. */
export const TORCHRUN_WORKER_FAILED = 'torchrun-worker-failed';

/** Facts about a failed torchrun run. */
export interface TorchrunFailure {
  /** Global rank that failed first (a rank killed by a signal wins over ranks that died of its absence); null when torchrun itself failed before any worker. */
  rank: number | null;
  /** The worker's exit code (negative: killed by that signal), or torchrun's own when no worker is named. */
  exitCode: number | null;
  /** The last lines of that rank's log (its own log file, else the launcher's output). */
  lastLines: string[];
  /** The rank's log file. */
  logFile?: string;
  stage: string;
}

/** A torchrun worker (or torchrun itself) failed; `details.rank` and `details.lastLines` say which and why. */
export class TorchrunWorkerError extends BackendError {
  constructor(failure: TorchrunFailure) {
    const who = failure.rank === null ? 'torchrun' : `rank ${failure.rank}`;
    const how =
      failure.exitCode === null ? 'failed' : failure.exitCode < 0 ? `was killed by signal ${-failure.exitCode}` : `exited with code ${failure.exitCode}`;
    const tail = failure.lastLines.slice(-5).join('\n  ');
    super(`${who} ${how} in stage ${failure.stage}${tail ? `; last lines:\n  ${tail}\n` : ''}`, {
      details: {
        reason: TORCHRUN_WORKER_FAILED,
        rank: failure.rank,
        exitCode: failure.exitCode,
        lastLines: failure.lastLines,
        stage: failure.stage,
        field: 'rank',
        ...(failure.logFile !== undefined ? { file: failure.logFile } : {}),
      },
    });
    this.name = 'TorchrunWorkerError';
  }
}

/** True for a TorchrunWorkerError, also one thrown by another copy of this package. */
export function isTorchrunWorkerError(err: unknown): err is TorchrunWorkerError {
  return isVlitError(err, 'VLIT_BACKEND') && err.details.reason === TORCHRUN_WORKER_FAILED;
}

/**
 * Which rank failed, from torchrun's failure summary (`rank : N (local_rank: L)` / `exitcode : E`
 * blocks). A rank killed by a signal is preferred: its peers then die of the broken collective, and
 * the summary may list them too.
 */
export function parseTorchrunFailures(output: string): { rank: number; exitCode: number }[] {
  const out: { rank: number; exitCode: number }[] = [];
  const re = /rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)/g;
  for (let m = re.exec(output); m; m = re.exec(output)) out.push({ rank: Number(m[1]), exitCode: Number(m[2]) });
  return out;
}
