// Prints the C++ sources of an addon for binding.gyp (`<!@(node scripts/list-sources.js cpu)`):
// every file in csrc/binding and csrc/<backend>, so adding an op never edits the build files.
const fs = require('fs');
const path = require('path');

const backend = process.argv[2] || 'cpu';
const root = path.join(__dirname, '..');
const files = [];
for (const dir of ['csrc/binding', `csrc/${backend}`]) {
  for (const f of fs.readdirSync(path.join(root, dir)).sort()) if (f.endsWith('.cpp')) files.push(`${dir}/${f}`);
}
console.log(files.join(' '));
