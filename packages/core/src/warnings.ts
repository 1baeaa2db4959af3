/** A recoverable problem reported to the caller instead of thrown or logged. */
export interface VlitWarning {
  /** Stable machine-readable code, e.g. `VLIT_W_LOSSY_CONVERSION`. */
  code: string;
  /** Human-readable explanation. */
  message: string;
  /** Where it happened (file, record, field) and any other facts. */
  details?: Record<string, unknown>;
}

/** Progress of long work, reported through an optional callback; library code never logs. */
export interface ProgressEvent {
  /** What is being done, e.g. `encode-images`. */
  stage: string;
  /** Units done so far. */
  done: number;
  /** Total units, when known. */
  total?: number;
  /** Optional human-readable note. */
  message?: string;
}

/** Callback receiving progress events. */
export type ProgressCallback = (event: ProgressEvent) => void;

/** Collects warnings and optionally forwards each to a listener. */
export class WarningCollector {
  readonly warnings: VlitWarning[] = [];
  constructor(private readonly onWarning?: (warning: VlitWarning) => void) {}

  /** Record a warning. */
  warn(warning: VlitWarning): void {
    this.warnings.push(warning);
    this.onWarning?.(warning);
  }
}
