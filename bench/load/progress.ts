// A one-line progress bar on stderr, only when stderr is a terminal.
export class Progress {
  private readonly on = process.stderr.isTTY === true;
  private last = '';

  update(fraction: number, text: string): void {
    if (!this.on) return;
    const width = 30;
    const f = Math.max(0, Math.min(1, fraction));
    const filled = Math.round(f * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(f * 100).toFixed(0).padStart(3)}% ${text}`;
    if (line === this.last) return;
    this.last = line;
    process.stderr.write(`\r${line}\x1b[K`);
  }

  done(): void {
    if (this.on && this.last) process.stderr.write('\r\x1b[K');
    this.last = '';
  }
}
