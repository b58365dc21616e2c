#!/usr/bin/env node
// Validate SARIF files against the official SARIF 2.1.0 JSON schema (the copy shipped in the npm
// package @microsoft/jest-sarif), using ajv. Installed by scripts/tools.sh into $AEGIS_TOOLS_DIR/npm.
// Usage: node scripts/validate-sarif.cjs FILE...   Exit 0 when every file is valid, 1 otherwise.
'use strict';
const path = require('path');
const fs = require('fs');
const root = process.env.AEGIS_NODE_MODULES;
if (!root) { console.error('AEGIS_NODE_MODULES is not set (run scripts/tools.sh)'); process.exit(2); }
const Ajv = require(path.join(root, 'ajv'));
const schema = require(path.join(root, '@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'));
const ajv = new Ajv({ allErrors: true, schemaId: 'auto' });
ajv.addMetaSchema(require(path.join(root, 'ajv/lib/refs/json-schema-draft-04.json')));
const validate = ajv.compile(schema);
let ok = true;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (validate(doc)) {
    console.log(`${file}: valid SARIF 2.1.0`);
  } else {
    ok = false;
    console.log(`${file}: INVALID`);
    for (const e of validate.errors.slice(0, 20)) console.log(`  ${e.dataPath || '/'} ${e.message}`);
  }
}
process.exit(ok ? 0 : 1);
