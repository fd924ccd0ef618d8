// The installed package's package.json (name, version), read at run time.
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../native';

export function packageJson(): { name: string; version: string } {
  return JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));
}
