// What a long command shows while it works: a line per step with its elapsed seconds, and while
// waiting either a spinner (stderr is a terminal) or an occasional plain line (CI logs stay clean).
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Seconds with one decimal below ten, whole above: `0.4s`, `12s`. */
export function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(1)}s` : `${Math.round(s)}s`;
}

export interface ProgressOptions {
  readonly out?: NodeJS.WritableStream;
  readonly err?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Plain waiting lines at most this often. @default 15000 */
  readonly heartbeatMs?: number;
}

export class Progress {
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;
  private readonly tty: boolean;
  private readonly heartbeatMs: number;
  private step = '';
  private title = '';
  private stepStarted = 0;
  private spinnerFrame = 0;
  private spinnerShown = false;
  private lastDetail = '';
  private lastLine = 0;

  constructor(options: ProgressOptions = {}) {
    this.out = options.out ?? process.stdout;
    this.err = options.err ?? process.stderr;
    this.tty = Boolean((this.err as NodeJS.WriteStream).isTTY) && process.env.CI === undefined;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  /** A plain line on stdout. */
  line(text = ''): void {
    this.clearSpinner();
    this.out.write(`${text}\n`);
  }

  /** Starts step `label` (e.g. `[3/7]`) called `title`. */
  start(label: string, title: string): void {
    this.step = label;
    this.title = title;
    this.stepStarted = Date.now();
    this.lastDetail = '';
    this.line(`${label} ${title}`);
  }

  /** A detail of the current step, indented. */
  info(text: string): void {
    for (const l of text.split('\n')) this.line(`      ${l}`);
  }

  /** Ends the current step with its outcome and elapsed time. */
  done(summary: string): void {
    this.line(`${this.step} ${this.title}: ${summary} (${seconds(Date.now() - this.stepStarted)})`);
  }

  /** Called on each poll of a wait: a spinner on a terminal, else a line when the detail changes or every heartbeat. */
  waiting(elapsedMs: number, detail: string): void {
    if (this.tty) {
      const frame = SPINNER[this.spinnerFrame++ % SPINNER.length];
      this.err.write(`\r\x1b[2K${frame} ${detail} (${seconds(elapsedMs)})`);
      this.spinnerShown = true;
      return;
    }
    const now = Date.now();
    if (detail !== this.lastDetail || now - this.lastLine >= this.heartbeatMs) {
      this.lastDetail = detail;
      this.lastLine = now;
      this.line(`      waiting ${seconds(elapsedMs)}: ${detail}`);
    }
  }

  private clearSpinner(): void {
    if (this.spinnerShown) {
      this.err.write('\r\x1b[2K');
      this.spinnerShown = false;
    }
  }
}
