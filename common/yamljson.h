/*
 * yamljson.h: YAML text to a cJSON tree, for declarative workflow
 * definitions written in YAML (docs/declarative.md). Core converts an
 * uploaded YAML definition with it before anything else looks at it, and
 * wfctl converts a FILE.yaml before uploading; from then on a definition is
 * its JSON.
 *
 * The input may be hostile, so only the part of YAML that maps onto JSON
 * is accepted: one document; no anchors or aliases (refused, not expanded:
 * nothing can grow past the text's own size); no tags but !!str, !!map and
 * !!seq; mapping keys that are strings, each once per mapping; at most
 * YJ_MAX_DEPTH levels of nesting and YJ_MAX_NODES values. Plain scalars are
 * resolved as YAML 1.2's core schema says (null, booleans, integers,
 * floats, else a string); quoted and block scalars are always strings.
 * The caller caps the text's length (the converter keeps no other cap on
 * memory: every value it builds comes from bytes of the text).
 *
 * Errors are one short line naming where, with 1-based line and column:
 * "YAML line 3, column 5: mapping values are not allowed in this context".
 * This module links libyaml; wf-worker does not link it.
 */
#ifndef WF_YAMLJSON_H
#define WF_YAMLJSON_H

#include <stddef.h>

#include <cJSON.h>

#define YJ_MAX_DEPTH 128    /* mappings and sequences open at once */
#define YJ_MAX_NODES 100000 /* scalars, mappings and sequences in all */

/*
 * Converts len bytes of YAML (UTF-8, or UTF-16 with a byte-order mark; no
 * terminating NUL needed) into a cJSON value of any type. Returns the tree
 * (caller frees with cJSON_Delete), or NULL with the reason in err (at most
 * errlen bytes, always terminated); nothing is left allocated then.
 */
cJSON *yj_parse(const char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * 1 when the first line of text that is not blank, a comment, a directive
 * (%…) or a document marker (---) starts with `key:` at its first column
 * (key followed by a colon and a blank or the line's end), else 0. A cheap
 * test that needs no parse: core uses it to tell a YAML definition
 * (`document:` first) sent without a YAML content type.
 */
int yj_starts_with_key(const char *text, size_t len, const char *key);

#endif /* WF_YAMLJSON_H */
