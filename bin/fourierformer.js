#!/usr/bin/env node
// The `fourierformer` command; its subcommands are in lib/cli (compiled to dist/cli).
require('../dist/cli').main();
