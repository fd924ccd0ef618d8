// The `fourierformer` command (bin/fourierformer.js). Each subcommand is a file of this folder
// exporting a commander Command, added to the program here. Every error (a bad flag or value, an
// unknown subcommand, a missing file) prints as one line naming what was wrong, and exits 1.
import { Command, CommanderError } from 'commander';
import * as dist from '../distributed';
import { benchCommand } from './bench';
import { demoCommand } from './demo';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { infoCommand } from './info';
import { packageJson } from './package-json';
import { trainCommand } from './train';

/** Errors thrown rather than printed by commander, on this command and all below it. */
function throwErrors(cmd: Command): Command {
  cmd.exitOverride().configureOutput({ outputError: () => undefined });
  for (const sub of cmd.commands) throwErrors(sub);
  return cmd;
}

export function program(): Command {
  return throwErrors(
    new Command('fourierformer')
      .description('FourierFormer attention for Node.js: fused C++/CUDA kernels, autograd and training')
      .version(packageJson().version)
      .addCommand(infoCommand())
      .addCommand(trainCommand())
      .addCommand(evalCommand())
      .addCommand(generateCommand())
      .addCommand(demoCommand())
      .addCommand(benchCommand()),
  );
}

/** Runs the command line; errors print as one line and exit 1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version were printed by commander; a subcommand group without its subcommand printed its help.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
        process.exitCode = e.exitCode;
        return;
      }
      console.error(`fourierformer: ${e.message.replace(/^error: /, '').replace(/\.$/, '')} (see --help)`);
      process.exitCode = 1;
      return;
    }
    console.error(`fourierformer:${dist.worldSize() > 1 ? ` rank ${dist.rank()}:` : ''} ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
