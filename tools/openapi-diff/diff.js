#!/usr/bin/env node
// openapi-diff's outcome as one JSON document on stdout, for devtools/contracts.py to parse.
// The package's CLI prints a sentence before its JSON; its documented Node API (diffSpecs) returns the
// outcome itself. Usage: node diff.js OLD.json NEW.json. Exit 0 whatever the outcome; 2 if it could not diff.
"use strict";

const fs = require("fs");
const openapiDiff = require("openapi-diff");

function spec(location) {
  return { content: fs.readFileSync(location, "utf8"), location, format: "openapi3" };
}

async function main([source, destination]) {
  const outcome = await openapiDiff.diffSpecs({ sourceSpec: spec(source), destinationSpec: spec(destination) });
  process.stdout.write(JSON.stringify(outcome));
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`${error.message || error}\n`);
  process.exit(2);
});
