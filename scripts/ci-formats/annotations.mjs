// The workflow annotations GitHub's own toolkit (@actions/core) prints for the results of a
// SARIF log written by `mcpsim check --format sarif`: `check --format github` must print the
// same lines, byte for byte.
//
//   node annotations.mjs CORE_MODULE_DIR LOG.sarif
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const [coreDir, sarifPath] = process.argv.slice(2);
const core = await import(pathToFileURL(path.join(coreDir, 'lib', 'core.js')).href);
const log = JSON.parse(readFileSync(sarifPath, 'utf8'));
for (const result of log.runs[0].results) {
  const loc = result.locations[0];
  const region = loc.physicalLocation.region ?? {};
  const at = loc.logicalLocations?.[0]?.fullyQualifiedName;
  const message = at ? `${result.message.text} (at ${at})` : result.message.text;
  const props = {
    title: 'mcpsim check',
    file: fromUri(loc.physicalLocation.artifactLocation.uri),
    startLine: region.startLine,
    startColumn: region.startColumn,
  };
  if (result.level === 'error') core.error(message, props);
  else core.warning(message, props);
}

// The path a SARIF artifact URI names: a `file:` URI or a percent-encoded relative reference.
function fromUri(uri) {
  return uri.startsWith('file:') ? fileURLToPath(uri) : decodeURIComponent(uri);
}
