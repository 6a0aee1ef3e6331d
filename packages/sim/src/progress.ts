/** Progress on stderr: a redrawn bar on a TTY, plain lines otherwise (CI, pipes). */
export interface Progress {
  log(line: string): void;
  update(p: { round: number; total: number; contributions: number; nodes: number; msg: string }): void;
  done(): void;
}

export function createProgress(mode: 'auto' | 'lines' | 'none'): Progress {
  const tty = mode === 'auto' && process.stderr.isTTY === true;
  const t0 = performance.now();
  let barShown = false;
  const clear = () => { if (barShown) { process.stderr.write('\r\x1b[2K'); barShown = false; } };
  if (mode === 'none') return { log() {}, update() {}, done() {} };
  return {
    log(line) {
      clear();
      process.stderr.write(`${line}\n`);
    },
    update({ round, total, contributions, nodes, msg }) {
      const secs = ((performance.now() - t0) / 1000).toFixed(0);
      if (!tty) {
        process.stderr.write(`[${secs}s] ${msg}\n`);
        return;
      }
      const width = 24;
      const filled = Math.round((round / total) * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      process.stderr.write(`\r\x1b[2K${bar} round ${Math.min(round + 1, total)}/${total} · updates ${contributions}/${nodes} · ${secs}s`);
      barShown = true;
    },
    done() { clear(); },
  };
}
