// What a run reports as it goes, as callbacks: a progress bar on a TTY or plain lines otherwise (both
// on stderr, so a program's stdout, a CLI's --json, stays its own), and the JSON-lines log file.
import * as fs from "fs";
import * as path from "path";
import { SingleBar, Presets } from "cli-progress";
import type { TrainerState } from "./trainer_state";
import type { TrainerCallback, TrainerArgs, TrainerControl, CallbackKwargs } from "./callbacks";

/** Plain lines no more often than this, except the last step's. */
const LINE_EVERY_MS = 10000;

const isStepRecord = (logs: CallbackKwargs["logs"]): logs is Record<string, number> => typeof logs?.loss === "number";

/** The progress bar (TTY) or a plain line every 10 s and at the last step, and a line per evaluation (HF's ProgressCallback). */
export class ProgressCallback implements TrainerCallback {
  private bar: SingleBar | null = null;
  private t0 = 0;
  private firstStep = 0;
  private lastLine = 0;

  constructor(readonly stream: NodeJS.WriteStream = process.stderr) {}

  onTrainBegin(_a: TrainerArgs, state: TrainerState): void {
    this.t0 = this.lastLine = Date.now();
    this.firstStep = state.step;
    if (!this.stream.isTTY) return;
    this.bar = new SingleBar({ stream: this.stream, format: "{bar} {value}/{total} | epoch {epoch} | loss {loss} | lr {lr} | {speed} it/s | ETA {eta_formatted}", hideCursor: true },
      Presets.shades_classic);
    this.bar.start(state.maxSteps, state.step, { epoch: state.epoch + 1, loss: "-", lr: "-", speed: "-" });
  }

  onLog(_a: TrainerArgs, state: TrainerState, _c: TrainerControl, { logs }: CallbackKwargs): void {
    if (!isStepRecord(logs)) return;
    const now = Date.now();
    const speed = ((logs.step - this.firstStep) / Math.max((now - this.t0) / 1000, 1e-3)).toFixed(2);
    if (this.bar) this.bar.update(logs.step, { epoch: state.epoch + 1, loss: logs.loss.toFixed(4), lr: logs.lr.toExponential(2), speed });
    else if (now - this.lastLine > LINE_EVERY_MS || logs.step === state.maxSteps) {
      this.lastLine = now;
      this.stream.write(`step ${logs.step}/${state.maxSteps} epoch ${state.epoch + 1} loss ${logs.loss.toFixed(4)} lr ${logs.lr.toExponential(2)} ${speed} it/s\n`);
    }
  }

  onEvaluate(_a: TrainerArgs, state: TrainerState, _c: TrainerControl, { metrics }: CallbackKwargs): void {
    const shown = Object.entries(metrics ?? {}).filter((e): e is [string, number] => typeof e[1] === "number");
    this.stream.write(`eval @ step ${state.step}: ${shown.map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ")}\n`);
  }

  onTrainEnd(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

/**
 * Every logged record (each step's, each evaluation's) as one JSON line in `file`. The file is started
 * afresh at the first record, or appended to when the run continues from a checkpoint (append).
 */
export class JsonLinesCallback implements TrainerCallback {
  private started = false;

  constructor(readonly file: string, readonly append = false) {}

  onLog(_a: TrainerArgs, _s: TrainerState, _c: TrainerControl, { logs }: CallbackKwargs): void {
    const line = JSON.stringify(logs) + "\n";
    if (this.started) return fs.appendFileSync(this.file, line);
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    (this.append ? fs.appendFileSync : fs.writeFileSync)(this.file, line);
    this.started = true;
  }
}
