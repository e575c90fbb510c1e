// lint.mjs: checks docs/openapi.yaml, for ctest's openapi_lint.
//
//   node lint.mjs --modules DIR SPEC
//
// 1. @apidevtools/swagger-parser validates the document against the
//    OpenAPI 3.1 schema and resolves every $ref;
// 2. every schema in it (components, parameters, request bodies, replies)
//    compiles in ajv's strict mode as JSON Schema 2020-12 (oalib.mjs), so a
//    misspelt keyword or a `required` name without its property fails;
// 3. the project's own rules for the document: unique operationIds, a
//    summary and tags on every operation, path parameters declared exactly
//    for the template's `{name}` segments, a 401 on every operation that
//    needs the token and none on the public ones (`security: []`), a 413 on
//    every operation with a body, every 4xx/5xx JSON reply the Error schema
//    (but the health probes', whose 503 names the failed checks),
//    `x-wf-pending` only as `true` on a path item.
// Prints one line per problem and "openapi lint: ok" at the end; exits 0
// when all hold, 1 when any does not, 2 on a usage error.

import process from 'node:process';

import { compile, deref, isJsonMedia, loadSpec, loadTools, makeAjv, operations } from './oalib.mjs';

function usage() {
  process.stderr.write('usage: node lint.mjs --modules DIR SPEC\n');
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length !== 3 || args[0] !== '--modules') usage();
const [, modulesDir, specPath] = args;
const problems = [];
const problem = (msg) => problems.push(msg);

const tools = loadTools(modulesDir);

// 1. the validator
try {
  await tools.SwaggerParser.validate(specPath);
} catch (err) {
  problem(`swagger-parser: ${err.message}`);
}

const doc = await loadSpec(tools, specPath);
if (doc.openapi !== '3.1.0') problem(`openapi is ${doc.openapi}, not 3.1.0`);

// 2. strict compilation of every schema
let ajv = null;
try {
  ajv = makeAjv(tools, doc);
} catch (err) {
  problem(`components/schemas: ${err.message}`);
}
function checkSchema(where, schema) {
  if (ajv === null) return;
  try {
    compile(ajv, schema);
  } catch (err) {
    problem(`${where}: schema does not compile strictly: ${err.message}`);
  }
}

// 3. the project's rules
const ids = new Map();
const publicOps = [];
for (const { path, method, op, pathItem } of operations(doc)) {
  const where = `${method.toUpperCase()} ${path}`;
  if (typeof op.operationId !== 'string' || !/^[a-z][A-Za-z0-9]*$/.test(op.operationId))
    problem(`${where}: operationId missing or not camelCase`);
  else if (ids.has(op.operationId))
    problem(`${where}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
  else ids.set(op.operationId, where);
  if (typeof op.summary !== 'string' || op.summary.trim() === '') problem(`${where}: no summary`);
  if (!Array.isArray(op.tags) || op.tags.length === 0) problem(`${where}: no tags`);

  // path parameters: exactly the template's names
  const params = [...(pathItem.parameters || []), ...(op.parameters || [])].map((p) => deref(doc, p));
  const inPath = params.filter((p) => p.in === 'path').map((p) => p.name);
  const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const n of inTemplate)
    if (!inPath.includes(n)) problem(`${where}: path parameter {${n}} is not declared`);
  for (const n of inPath)
    if (!inTemplate.includes(n)) problem(`${where}: parameter ${n} is not in the path`);
  for (const p of params) {
    if (p.in === 'path' && p.required !== true) problem(`${where}: path parameter ${p.name} not required`);
    checkSchema(`${where} parameter ${p.name}`, p.schema);
  }

  // security: public means `security: []`; everything else needs the token
  const isPublic = Array.isArray(op.security) && op.security.length === 0;
  const responses = op.responses || {};
  if (isPublic) publicOps.push(where);
  if (!isPublic && op.security !== undefined) problem(`${where}: security must be [] or absent`);
  if (!isPublic && !('401' in responses)) problem(`${where}: needs the token but lists no 401`);
  if (isPublic && '401' in responses) problem(`${where}: public but lists a 401`);

  // bodies
  if (op.requestBody) {
    const body = deref(doc, op.requestBody);
    if (!('413' in responses)) problem(`${where}: takes a body but lists no 413`);
    for (const [type, media] of Object.entries(body.content || {}))
      checkSchema(`${where} request ${type}`, media.schema);
  }

  // replies
  if (!Object.keys(responses).some((s) => /^2/.test(s))) problem(`${where}: no 2xx reply`);
  for (const [status, ref] of Object.entries(responses)) {
    const r = deref(doc, ref);
    for (const [type, media] of Object.entries(r.content || {})) {
      if (media.schema === undefined) problem(`${where} ${status} ${type}: no schema`);
      checkSchema(`${where} ${status} ${type}`, media.schema);
      if (/^[45]/.test(status) && isJsonMedia(type) && !op.tags.includes('health') &&
          !(media.schema && media.schema.$ref === '#/components/schemas/Error'))
        problem(`${where} ${status}: an error reply must be the Error schema`);
    }
  }
}
for (const [p, item] of Object.entries(doc.paths || {})) {
  if ('x-wf-pending' in item && item['x-wf-pending'] !== true)
    problem(`${p}: x-wf-pending must be true (or absent)`);
}
for (const [name, r] of Object.entries((doc.components && doc.components.responses) || {})) {
  for (const [type, media] of Object.entries(r.content || {}))
    checkSchema(`components/responses/${name} ${type}`, media.schema);
}

for (const p of problems) process.stdout.write(`openapi lint: ${p}\n`);
if (problems.length > 0) {
  process.stdout.write(`openapi lint: ${problems.length} problem(s) in ${specPath}\n`);
  process.exit(1);
}
process.stdout.write(
  `openapi lint: ok (${ids.size} operations, ${publicOps.length} public, ` +
    `${Object.keys(doc.components.schemas).length} schemas)\n`,
);
