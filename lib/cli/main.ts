// The `tunekit` command. Each command's action is wrapped so that a mistake of the user (a bad flag,
// a missing file or column, a label the model does not know, an empty dataset) prints one line and
// exits 1; only a bug prints a stack (set TUNEKIT_DEBUG=1 to see stacks for everything).
import { Command, CommanderError } from "commander";
import { TunekitError } from "../errors";
import type { Action } from "./args";
import { registerTrain } from "./commands/train";
import { registerPredict } from "./commands/predict";
import { registerPretrain } from "./commands/pretrain";
import { registerInfo } from "./commands/info";
import { registerDemo } from "./commands/demo";
import { registerLaunch } from "./commands/launch";
import { destroyProcessGroup, getProcessGroup, worldRank } from "../distributed/process_group";
import { distributedFromEnv } from "../distributed/env";

/** Started by a launcher as one process of a data-parallel job. */
function inJob(): boolean {
  try {
    return distributedFromEnv() !== null;
  } catch {
    return false;
  }
}
import { registerGenerate } from "./commands/generate";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { version } = require("../../package.json") as { version: string };

function fail(e: unknown): never {
  if (process.env.TUNEKIT_DEBUG) console.error(e);
  // The other processes of a data-parallel job stop with this reason (not at their timeout).
  getProcessGroup()?.abort(e instanceof Error ? e.message : String(e));
  if (e instanceof TunekitError) {
    // Which process of a job says it (their lines interleave), unless the message starts with it.
    const rank = (getProcessGroup() || inJob()) && !e.message.startsWith(`rank ${worldRank()}:`) ? `[rank ${worldRank()}] ` : "";
    console.error(`tunekit: ${rank}${e.message}`);
    process.exit(1);
  }
  console.error(`tunekit: internal error: ${(e as Error)?.stack ?? String(e)}\nThis is a bug in tunekit; please report it with the command you ran.`);
  process.exit(70);
}

const wrap = (fn: Action): Action => async (...args) => {
  try {
    // commander passes (positionals..., options, command): hand the options object (plus positionals) on.
    const cmd = args[args.length - 1] as Command;
    await fn(...args.slice(0, -2), cmd.opts());
    destroyProcessGroup(); // a data-parallel job's processes leave together
  } catch (e) {
    fail(e);
  }
};

export function program(): Command {
  const p = new Command("tunekit")
    .description("Fine-tune transformers (BERT, DistilBERT, RoBERTa, GPT-2) from Node, on your CPU, offline")
    .version(version)
    .showHelpAfterError("(add --help for the options and examples)")
    .exitOverride()
    .addHelpText("after", `
Examples:
  $ npx tunekit demo                                   # the offline demo (npm start)
  $ npx tunekit train --data reviews.csv --text review --label sentiment --out ./out
  $ npx tunekit eval --model ./out --data test.csv
  $ npx tunekit predict --model ./out "what a waste of two hours"
  $ npx tunekit pretrain --model ./bert-base-uncased --data ./domain-texts/ --out ./bert-domain
  $ npx tunekit embed --data texts.csv --output vectors.npy
  $ npx tunekit curve --data reviews.csv --sizes 50,100,200,500
  $ npx tunekit info --model ./bert-base-uncased --method lora
  $ npx tunekit launch --nproc-per-node 2 -- train --data reviews.csv --out ./out   # data-parallel: 2 processes
  $ npx tunekit generate --model ./gpt2 "The weather today is" --max-new-tokens 30`);
  registerTrain(p, wrap);
  registerPredict(p, wrap);
  registerPretrain(p, wrap);
  registerInfo(p, wrap);
  registerDemo(p, wrap);
  registerLaunch(p, wrap);
  registerGenerate(p, wrap);
  return p;
}

export async function main(argv = process.argv): Promise<void> {
  // `tunekit … | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(0); else throw e; });
  const p = program();
  for (const c of p.commands) c.exitOverride().showHelpAfterError("(add --help for the options and examples)");
  try {
    await p.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    fail(e);
  }
}
