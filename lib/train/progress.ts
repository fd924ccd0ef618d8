// Training progress on the terminal: a cli-progress bar with the step, loss, learning rate,
// tokens (or images) per second and the ETA, and messages (validation results) printed above it.
// Where the output is not a terminal (a log file, CI), or with `quiet`, there is no bar: one plain
// line every `logEvery` steps instead, and the messages as lines.
import { MultiBar, SingleBar } from 'cli-progress';

export interface StepStatus {
  step: number;
  total: number;
  /** Mean training loss over the recent steps. */
  loss: number;
  lr: number;
  /** Tokens or images per second. */
  rate: number;
  /** Seconds left, or null while unknown. */
  eta: number | null;
}

/** 75 -> '1m15s', 3725 -> '1h02m', 9 -> '9s'. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** 12345.6 -> '12.3k', 987.65 -> '988', 3.21 -> '3.21'. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '?';
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)}k`;
  if (perSecond >= 100) return perSecond.toFixed(0);
  return perSecond.toPrecision(3);
}

/** The one-line form: 'fourier step 120/2000 loss 5.1234 lr 2.50e-4 3.41k tokens/s ETA 4m05s'. */
export function formatStatus(label: string, s: StepStatus, itemsName: string): string {
  const lr = s.lr.toExponential(2).replace(/e([+-])0*(\d)/, 'e$1$2');
  return `${label} step ${s.step}/${s.total} loss ${s.loss.toFixed(4)} lr ${lr} ${formatRate(s.rate)} ${itemsName}/s ETA ${formatDuration(s.eta)}`;
}

export interface ProgressOptions {
  /** No bar even on a terminal. */
  quiet?: boolean;
  /** Steps between lines when there is no bar. */
  logEvery: number;
  /** Where everything goes (process.stderr by default). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export class TrainingProgress {
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly multi: MultiBar | null;
  private bar: SingleBar | null = null;

  constructor(
    private readonly label: string,
    private readonly itemsName: string,
    private readonly opts: ProgressOptions,
  ) {
    if (!Number.isInteger(opts.logEvery) || opts.logEvery < 1)
      throw new Error(`logEvery: expected a positive integer, got ${opts.logEvery}`);
    this.stream = opts.stream ?? process.stderr;
    this.multi =
      !opts.quiet && this.stream.isTTY === true
        ? new MultiBar({
            stream: this.stream,
            format: `${label} {bar} {value}/{total} | loss {loss} | lr {lr} | {rate} ${itemsName}/s | ETA {etaText}`,
            barsize: 24,
            hideCursor: true,
            gracefulExit: false,
            clearOnComplete: false,
          })
        : null;
  }

  /** Shows the state after a step: updates the bar, or prints a line every logEvery steps. */
  update(s: StepStatus): void {
    if (this.multi) {
      const payload = {
        loss: s.loss.toFixed(4),
        lr: s.lr.toExponential(2),
        rate: formatRate(s.rate),
        etaText: formatDuration(s.eta),
      };
      if (this.bar === null) this.bar = this.multi.create(s.total, s.step, payload);
      this.bar.setTotal(s.total);
      this.bar.update(s.step, payload);
    } else if (s.step % this.opts.logEvery === 0 || s.step === s.total) {
      this.stream.write(formatStatus(this.label, s, this.itemsName) + '\n');
    }
  }

  /** Prints a message (above the bar, when there is one). */
  log(message: string): void {
    if (this.multi && this.bar) this.multi.log(message + '\n');
    else this.stream.write(message + '\n');
  }

  /** Stops the bar, leaving its last state on screen. */
  stop(): void {
    if (this.multi && this.bar) {
      this.multi.update(); // flushes the messages not yet shown
      this.multi.stop();
    }
    this.bar = null;
  }
}
