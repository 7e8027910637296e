/**
 * Progress on stderr: on a terminal, one bar per step that redraws in place (steps that last a known
 * time fill as time passes); elsewhere (CI, the test suite) one line per step.
 */
const WIDTH = 28;

export class Progress {
  private readonly tty: boolean;
  private label = '';
  private fraction = 0;
  private detail = '';
  private timer: NodeJS.Timeout | null = null;
  private stepStarted = 0;
  private done = 0;

  /** Steps the whole bench will take, for the "3/17" counter. */
  totalSteps = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true && process.env.CI === undefined;
  }

  /** Starts a step; with `expectedMs` its bar fills over that time unless update() says otherwise. */
  step(label: string, expectedMs?: number): void {
    this.finishLine();
    this.label = label;
    this.fraction = 0;
    this.detail = '';
    this.stepStarted = performance.now();
    if (!this.tty) {
      this.stream.write(`[${this.done + 1}/${this.totalSteps}] ${label}\n`);
      return;
    }
    if (expectedMs !== undefined) {
      this.timer = setInterval(() => {
        this.fraction = Math.min(0.99, (performance.now() - this.stepStarted) / expectedMs);
        this.draw();
      }, 200);
      this.timer.unref();
    }
    this.draw();
  }

  update(fraction: number, detail = this.detail): void {
    this.fraction = Math.max(0, Math.min(1, fraction));
    this.detail = detail;
    if (this.tty) this.draw();
  }

  /** Ends the current step with a one-line result. */
  result(text: string): void {
    this.fraction = 1;
    this.detail = text;
    if (this.tty) this.draw();
    else this.stream.write(`      ${text} (${((performance.now() - this.stepStarted) / 1000).toFixed(1)} s)\n`);
    this.finishLine();
  }

  note(text: string): void {
    this.finishLine();
    this.stream.write(`${text}\n`);
  }

  private finishLine(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.label === '') return;
    if (this.tty) this.stream.write('\n');
    this.done++;
    this.label = '';
  }

  private draw(): void {
    const filled = Math.round(this.fraction * WIDTH);
    const overall = `${String(this.done + 1).padStart(String(this.totalSteps).length)}/${this.totalSteps}`;
    const secs = ((performance.now() - this.stepStarted) / 1000).toFixed(1);
    const line = `${overall} [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${this.label} ${secs}s${this.detail === '' ? '' : ` — ${this.detail}`}`;
    const columns = this.stream.columns ?? 120;
    this.stream.write(`\r\x1b[2K${line.length > columns ? `${line.slice(0, columns - 1)}…` : line}`);
  }
}
