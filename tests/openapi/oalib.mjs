// oalib.mjs: what lint.mjs and validate-reply.mjs share: loading the pinned
// npm tools from the directory ensure-node.sh installed them into (the
// build directory, not the repository: this file sits in the source tree,
// so its packages are required from that directory explicitly), parsing
// docs/openapi.yaml, and compiling its schemas with ajv.
//
// Schemas are compiled in ajv's strict mode (an unknown keyword, a
// `required` name without a property, a keyword for a type the schema does
// not allow are errors), as JSON Schema 2020-12, OpenAPI 3.1's dialect. The
// document's `#/components/schemas/X` references are rewritten to point into
// one schema registered with ajv that holds every component under `$defs`,
// so any schema of the document compiles on its own. Nothing here changes
// the document or writes a file.

import { createRequire } from 'node:module';
import path from 'node:path';

export const COMPONENTS_ID = 'urn:wf-server:openapi:components';
export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// The npm packages, required from modulesDir (holding package.json and
// node_modules). Throws when one is missing.
export function loadTools(modulesDir) {
  const require = createRequire(path.join(path.resolve(modulesDir), 'package.json'));
  return {
    SwaggerParser: require('@apidevtools/swagger-parser'),
    Ajv2020: require('ajv/dist/2020').default,
    addFormats: require('ajv-formats').default,
  };
}

// The document as parsed (its $refs kept), a fresh object each call.
export async function loadSpec(tools, specPath) {
  return tools.SwaggerParser.parse(specPath);
}

// A copy of value with every `#/components/schemas/X` reference pointing
// into the components schema registered by makeAjv.
function rewriteRefs(value) {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/'))
      out[k] = `${COMPONENTS_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`;
    else out[k] = rewriteRefs(v);
  }
  return out;
}

// An ajv instance (strict, every error, formats) holding the document's
// component schemas. Throws when one of them is not a valid strict schema.
export function makeAjv(tools, doc) {
  const ajv = new tools.Ajv2020({
    strict: true,
    allErrors: true,
    allowUnionTypes: true,
    validateFormats: true,
  });
  tools.addFormats(ajv);
  // OpenAPI's own vocabulary beside JSON Schema's (none is used today).
  ajv.addVocabulary(['discriminator', 'xml', 'externalDocs', 'example']);
  const schemas = (doc.components && doc.components.schemas) || {};
  ajv.addSchema({ $id: COMPONENTS_ID, $defs: rewriteRefs(schemas) });
  // Compiling the components schema compiles (and so checks) every $def.
  ajv.getSchema(COMPONENTS_ID);
  for (const name of Object.keys(schemas))
    ajv.getSchema(`${COMPONENTS_ID}#/$defs/${name}`);
  return ajv;
}

// The validation function of a schema of the document (its refs rewritten).
export function compile(ajv, schema) {
  return ajv.compile(rewriteRefs(schema === undefined ? {} : schema));
}

// Follows an OpenAPI-level $ref ('#/components/<kind>/<name>') once.
export function deref(doc, obj) {
  if (!obj || typeof obj.$ref !== 'string') return obj;
  const m = /^#\/components\/([A-Za-z]+)\/([A-Za-z0-9_.-]+)$/.exec(obj.$ref);
  if (!m || !doc.components || !doc.components[m[1]] || !doc.components[m[1]][m[2]])
    throw new Error(`unresolvable reference ${obj.$ref}`);
  return doc.components[m[1]][m[2]];
}

// Every operation: {path, method, op, pathItem}.
export function operations(doc) {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      if (item[method]) out.push({ path: p, method, op: item[method], pathItem: item });
    }
  }
  return out;
}

// The response object for a target and a status: target is an operationId
// or '#/components/responses/<Name>' (a reply no single operation owns: 404
// for an unknown path, 405). Exact status first, then '4XX' style, then
// 'default'. Returns {response, where} or throws with the reason.
export function findResponse(doc, target, status) {
  if (target.startsWith('#/components/responses/')) {
    const response = deref(doc, { $ref: target });
    return { response, where: target };
  }
  const found = operations(doc).find((o) => o.op.operationId === target);
  if (!found) throw new Error(`no operation has operationId ${target}`);
  const responses = found.op.responses || {};
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
  if (key === undefined)
    throw new Error(
      `${target} (${found.method.toUpperCase()} ${found.path}) documents no status ${status} ` +
        `(it documents ${Object.keys(responses).join(', ')})`,
    );
  return {
    response: deref(doc, responses[key]),
    where: `${target} (${found.method.toUpperCase()} ${found.path}) ${key}`,
  };
}

// 1 when a media type is JSON (application/json or a +json suffix).
export function isJsonMedia(type) {
  return type === 'application/json' || /^application\/[A-Za-z0-9.-]+\+json$/.test(type);
}

// ajv's errors as one line each, at most max of them.
export function formatErrors(errors, max = 8) {
  const lines = (errors || []).slice(0, max).map((e) => {
    const at = e.instancePath === '' ? '(the body)' : e.instancePath;
    const extra =
      e.keyword === 'additionalProperties'
        ? ` "${e.params.additionalProperty}"`
        : e.keyword === 'enum'
          ? ` ${JSON.stringify(e.params.allowedValues)}`
          : e.keyword === 'const'
            ? ` ${JSON.stringify(e.params.allowedValue)}`
            : '';
    return `${at} ${e.message}${extra} [${e.schemaPath}]`;
  });
  if ((errors || []).length > max) lines.push(`… and ${errors.length - max} more`);
  return lines.join('; ');
}
