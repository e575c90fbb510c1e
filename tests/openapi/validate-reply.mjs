// validate-reply.mjs: checks real replies of the server against
// docs/openapi.yaml (tests/integration/test_openapi_replies.c runs it).
//
//   node validate-reply.mjs --modules DIR SPEC TARGET STATUS BODYFILE [CONTENT-TYPE]
//   node validate-reply.mjs --modules DIR SPEC --batch MANIFEST
//
// TARGET is an operationId, or '#/components/responses/<Name>' for a reply
// no single operation owns (404 for an unknown path, 405). The response is
// the operation's entry for STATUS (exact, else '4XX', else 'default'); the
// reply's CONTENT-TYPE (parameters ignored; '-' or absent: the response's
// only media type) must be one it declares; a JSON body must parse and
// match that media type's schema (oalib.mjs: strict ajv, formats checked).
// A MANIFEST holds one reply a line, its fields separated by tabs:
// TARGET, STATUS, CONTENT-TYPE ('-' for none), BODYFILE.
//
// Prints "ok <n> <target> <status>" or "FAIL <n> <target> <status>: <why>"
// for each reply (n: its line, 1 for a single reply). Exits 0 when every
// reply matched, 1 when any did not, 2 on a usage error or a document that
// cannot be read.

import fs from 'node:fs';
import process from 'node:process';

import { compile, findResponse, formatErrors, isJsonMedia, loadSpec, loadTools, makeAjv } from './oalib.mjs';

function usage(msg) {
  if (msg) process.stderr.write(`validate-reply: ${msg}\n`);
  process.stderr.write(
    'usage: node validate-reply.mjs --modules DIR SPEC TARGET STATUS BODYFILE [CONTENT-TYPE]\n' +
      '       node validate-reply.mjs --modules DIR SPEC --batch MANIFEST\n',
  );
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length < 4 || args[0] !== '--modules') usage();
const modulesDir = args[1];
const specPath = args[2];
let replies;
if (args[3] === '--batch') {
  if (args.length !== 5) usage();
  replies = fs
    .readFileSync(args[4], 'utf8')
    .split('\n')
    .map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, n }) => {
      const f = line.split('\t');
      if (f.length !== 4) usage(`${args[4]}:${n}: want 4 tab-separated fields, got ${f.length}`);
      return { n, target: f[0], status: f[1], type: f[2], file: f[3] };
    });
} else {
  if (args.length !== 6 && args.length !== 7) usage();
  replies = [{ n: 1, target: args[3], status: args[4], file: args[5], type: args[6] || '-' }];
}

let doc, ajv;
try {
  const tools = loadTools(modulesDir);
  doc = await loadSpec(tools, specPath);
  ajv = makeAjv(tools, doc);
} catch (err) {
  process.stderr.write(`validate-reply: cannot use ${specPath}: ${err.message}\n`);
  process.exit(2);
}

const compiled = new Map(); // where + media type -> validate function

// Why the reply does not match, or null when it does.
function check(r) {
  if (!/^[1-5][0-9][0-9]$/.test(r.status)) return `status "${r.status}" is not an HTTP status`;
  const { response, where } = findResponse(doc, r.target, Number(r.status));
  const content = response.content || {};
  const declared = Object.keys(content);
  const body = fs.readFileSync(r.file);
  if (declared.length === 0)
    return body.length === 0 ? null : `${where} declares no body, got ${body.length} bytes`;
  let type;
  if (r.type === '-' || r.type === '') {
    if (declared.length !== 1) return `no Content-Type, and ${where} declares ${declared.join(', ')}`;
    type = declared[0];
  } else {
    type = r.type.split(';')[0].trim().toLowerCase();
    if (!(type in content))
      return `Content-Type ${type} is not declared by ${where} (it declares ${declared.join(', ')})`;
  }
  if (!isJsonMedia(type)) {
    const schema = content[type].schema || {};
    if (schema.type === 'string' && !isUtf8(body)) return `${where}: ${type} body is not UTF-8 text`;
    return null;
  }
  let value;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return `${where}: body is not JSON (${err.message}): ${preview(body)}`;
  }
  const key = `${where} ${type}`;
  if (!compiled.has(key)) compiled.set(key, compile(ajv, content[type].schema));
  const validate = compiled.get(key);
  if (validate(value)) return null;
  return `${where}: ${formatErrors(validate.errors)}; body: ${preview(body)}`;
}

function isUtf8(buf) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

function preview(buf) {
  const s = buf.toString('utf8');
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

let failed = 0;
for (const r of replies) {
  let why;
  try {
    why = check(r);
  } catch (err) {
    why = err.message;
  }
  if (why === null) {
    process.stdout.write(`ok ${r.n} ${r.target} ${r.status}\n`);
  } else {
    failed++;
    process.stdout.write(`FAIL ${r.n} ${r.target} ${r.status}: ${why}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
