// The `fourierformer` command (bin/fourierformer.js). Each subcommand is a file of this folder
// exporting a commander Command, added to the program here.
import { Command } from 'commander';
import { packageJson } from './package-json';
import { infoCommand } from './info';

export function program(): Command {
  return new Command('fourierformer')
    .description('FourierFormer attention for Node.js: fused C++/CUDA kernels, autograd and training')
    .version(packageJson().version)
    .showHelpAfterError()
    .addCommand(infoCommand());
}

/** Runs the command line; errors print as one line and exit 1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    console.error(`fourierformer: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
