/*
 * test_yamljson.c: YAML to JSON (common/yamljson.c): scalars of every
 * core-schema type, nested and flow collections, block scalars, comments;
 * each refusal (anchor, alias, tag, depth, node count, duplicate key,
 * non-string key, second document, malformed text) with its line and
 * column; and the `document:` sniffing core uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testhelp.h"
#include "yamljson.h"

/* Converts text and prints it as unformatted JSON (malloc'ed), or returns
 * NULL with err set. */
static char *conv(const char *text, char *err, size_t errlen)
{
    cJSON *j = yj_parse(text, strlen(text), err, errlen);
    char *out;

    if (j == NULL)
        return NULL;
    out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}

/* 1 when text converts to exactly json. */
static int gives(const char *text, const char *json)
{
    char err[256];
    char *out = conv(text, err, sizeof(err));
    int ok = out != NULL && strcmp(out, json) == 0;

    if (!ok)
        fprintf(stderr, "YAML %s\n  gave %s\n  expected %s\n", text, out != NULL ? out : err, json);
    free(out);
    return ok;
}

/* 1 when text is refused with exactly message. */
static int refused(const char *text, const char *message)
{
    char err[256];
    char *out = conv(text, err, sizeof(err));
    int ok = out == NULL && strcmp(err, message) == 0;

    if (!ok)
        fprintf(stderr, "YAML %s\n  gave %s\n  expected the error %s\n", text,
                out != NULL ? out : err, message);
    free(out);
    return ok;
}

static void scalars(void)
{
    /* null */
    CHECK(gives("a: null\nb: Null\nc: NULL\nd: ~\ne:\n", "{\"a\":null,\"b\":null,\"c\":null,"
                                                         "\"d\":null,\"e\":null}"));
    /* booleans: only the core schema's; YAML 1.1's yes/no/on/off are strings */
    CHECK(gives("[true, True, TRUE, false, False, FALSE, yes, no, on, off, tRUE]",
                "[true,true,true,false,false,false,\"yes\",\"no\",\"on\",\"off\",\"tRUE\"]"));
    /* integers: decimal, octal 0o, hex 0x; 1.1's 0777 is decimal, 0b a string */
    CHECK(gives("[0, 42, -7, +3, 0o17, 0x1F, 0xff, 0777, 0b11, 1_000]",
                "[0,42,-7,3,15,31,255,777,\"0b11\",\"1_000\"]"));
    /* floats */
    CHECK(gives("[1.5, -0.25, .5, 5., 1e3, 2.5E-1, +1.0e+2]", "[1.5,-0.25,0.5,5,1000,0.25,100]"));
    /* not numbers: strings */
    CHECK(gives("[1.2.3, 1e, ., -, 12a, 0x, 0o8, '42', \"true\", 1 2]",
                "[\"1.2.3\",\"1e\",\".\",\"-\",\"12a\",\"0x\",\"0o8\",\"42\",\"true\",\"1 2\"]"));
    /* quoted scalars are strings, with their escapes */
    CHECK(gives("a: 'it''s'\nb: \"tab\\there \\u00e9\"\nc: ''\nd: \"null\"",
                "{\"a\":\"it's\",\"b\":\"tab\\there é\",\"c\":\"\",\"d\":\"null\"}"));
    /* !!str makes a plain scalar a string; ! too */
    CHECK(gives("[!!str 12, ! true, !!str null]", "[\"12\",\"true\",\"null\"]"));
    /* a plain scalar with blanks and a ${ } expression */
    CHECK(gives("x: ${ .a + 1 }\ny: hello world", "{\"x\":\"${ .a + 1 }\",\"y\":\"hello world\"}"));
    /* an empty mapping or sequence alone (no key seen before it) */
    CHECK(gives("{}", "{}"));
    CHECK(gives("[]", "[]"));
    /* a scalar alone is a document too */
    CHECK(gives("42", "42"));
    CHECK(gives("---\n", "null"));
    /* the same numbers cJSON reads from JSON (both strtod) */
    {
        cJSON *j = cJSON_Parse("[12345678901234567890,0.1,-0.0,1e-400]");
        char *t = cJSON_PrintUnformatted(j);
        CHECK(t != NULL && gives("[12345678901234567890, 0.1, -0.0, 1e-400]", t));
        free(t);
        cJSON_Delete(j);
    }
}

static void collections(void)
{
    /* block mappings and sequences, nested */
    CHECK(gives(
        "document:\n  dsl: 1.0.0\n  name: x\ndo:\n  - a:\n      set:\n        v: 1\n"
        "  - b:\n      wait: PT1S\n",
        "{\"document\":{\"dsl\":\"1.0.0\",\"name\":\"x\"},\"do\":[{\"a\":{\"set\":{\"v\":1}}},"
        "{\"b\":{\"wait\":\"PT1S\"}}]}"));
    /* flow style, mixed with block */
    CHECK(gives("a: {x: 1, y: [2, 3, {z: 4}]}\nb: []\nc: {}",
                "{\"a\":{\"x\":1,\"y\":[2,3,{\"z\":4}]},\"b\":[],\"c\":{}}"));
    /* JSON is YAML */
    CHECK(gives("{\"a\": [1, \"two\", null, true], \"b\": {\"c\": 1.5}}",
                "{\"a\":[1,\"two\",null,true],\"b\":{\"c\":1.5}}"));
    /* a sequence of sequences, indentation-less sequence under a key */
    CHECK(gives("m:\n- - 1\n  - 2\n- [3]\n", "{\"m\":[[1,2],[3]]}"));
    /* block scalars: literal keeps newlines, folded folds; chomping */
    CHECK(gives("lit: |\n  line 1\n  line 2\nfold: >\n  a\n  b\n\n  c\nstrip: |-\n  x\nkeep: |+\n  "
                "y\n\nend: 1",
                "{\"lit\":\"line 1\\nline 2\\n\",\"fold\":\"a b\\nc\\n\",\"strip\":\"x\","
                "\"keep\":\"y\\n\\n\",\"end\":1}"));
    /* comments everywhere, a document marker and an end marker */
    CHECK(gives("# head\n--- # start\na: 1 # one\n# between\nb: # two\n  - x # item\n...\n",
                "{\"a\":1,\"b\":[\"x\"]}"));
    /* a directive */
    CHECK(gives("%YAML 1.1\n---\na: 1\n", "{\"a\":1}"));
    /* order is kept; a key may be quoted; keys that look like numbers if quoted */
    CHECK(gives("z: 1\na: 2\n'200': ok\n\"true\": t",
                "{\"z\":1,\"a\":2,\"200\":\"ok\",\"true\":\"t\"}"));
    /* the same key in two mappings is fine */
    CHECK(gives("a: {k: 1}\nb: {k: 2}\nc: [{k: 3}, {k: 4}]",
                "{\"a\":{\"k\":1},\"b\":{\"k\":2},\"c\":[{\"k\":3},{\"k\":4}]}"));
}

static void refusals(void)
{
    char deep[2 * (YJ_MAX_DEPTH + 2) + 1], err[256];
    char *big, *out;
    size_t n = 0;

    /* anchors and aliases, refused rather than expanded */
    CHECK(refused("a: &x 1\nb: *x\n",
                  "YAML line 1, column 4: anchors (&x) and aliases are not supported"));
    CHECK(refused("a: &x [1, 2]\n",
                  "YAML line 1, column 4: anchors (&x) and aliases are not supported"));
    CHECK(refused("- *x\n", "YAML line 1, column 3: aliases (*x) and anchors are not supported"));
    /* tags other than !!str, !!map, !!seq */
    CHECK(refused("a: !!int 3\n",
                  "YAML line 1, column 4: tag tag:yaml.org,2002:int is not supported (only !!str, "
                  "!!map and !!seq)"));
    CHECK(refused(
        "a: !custom x\n",
        "YAML line 1, column 4: tag !custom is not supported (only !!str, !!map and !!seq)"));
    CHECK(gives("a: !!map {b: !!seq [1]}", "{\"a\":{\"b\":[1]}}"));
    /* depth: 128 levels are fine, 129 are not */
    for (int i = 0; i < YJ_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < YJ_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    out = conv(deep, err, sizeof(err));
    CHECK(out != NULL);
    free(out);
    n = 0;
    for (int i = 0; i <= YJ_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i <= YJ_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    CHECK(refused(deep, "YAML line 1, column 129: nested more than 128 levels deep"));
    /* nodes: a flow sequence of YJ_MAX_NODES scalars is one too many */
    big = malloc(2 * YJ_MAX_NODES + 3);
    if (big != NULL) {
        n = 0;
        big[n++] = '[';
        for (int i = 0; i < YJ_MAX_NODES; i++) {
            big[n++] = '1';
            big[n++] = ',';
        }
        big[n - 1] = ']';
        big[n] = '\0';
        CHECK(refused(big, "YAML line 1, column 200000: more than 100000 values"));
        big[n - 3] = ']'; /* one fewer */
        big[n - 2] = '\0';
        out = conv(big, err, sizeof(err));
        CHECK(out != NULL);
        free(out);
        free(big);
    }
    /* duplicate keys, named where the second is */
    CHECK(refused("a: 1\nb: 2\na: 3\n", "YAML line 3, column 1: duplicate mapping key \"a\""));
    CHECK(refused("x:\n  k: 1\n  'k': 2\n", "YAML line 3, column 3: duplicate mapping key \"k\""));
    CHECK(
        refused("{a: 1, b: {a: 1}, a: 2}", "YAML line 1, column 19: duplicate mapping key \"a\""));
    /* keys that are not strings */
    CHECK(refused(
        "200: ok\n",
        "YAML line 1, column 1: mapping key 200 is not a string (quote it to make it one)"));
    CHECK(refused(
        "true: 1\n",
        "YAML line 1, column 1: mapping key true is not a string (quote it to make it one)"));
    CHECK(refused("? \n: 1\n", "YAML line 1, column 2: a mapping key must not be empty"));
    CHECK(
        refused("{~: 1}",
                "YAML line 1, column 2: mapping key ~ is not a string (quote it to make it one)"));
    CHECK(refused("? [a]\n: 1\n",
                  "YAML line 1, column 3: a mapping key must be a string, not a sequence"));
    CHECK(refused("{{a: 1}: 2}",
                  "YAML line 1, column 2: a mapping key must be a string, not a mapping"));
    /* one document only */
    CHECK(refused("a: 1\n---\nb: 2\n",
                  "YAML line 2, column 1: a second document: only one is allowed"));
    CHECK(refused("", "YAML line 1, column 1: no document"));
    CHECK(refused("# only a comment\n", "YAML line 2, column 1: no document"));
    /* numbers JSON cannot hold */
    CHECK(
        refused("[.inf]", "YAML line 1, column 2: .inf has no JSON form (quote it for a string)"));
    CHECK(refused("x: -.Inf",
                  "YAML line 1, column 4: -.Inf has no JSON form (quote it for a string)"));
    CHECK(
        refused("x: .nan", "YAML line 1, column 4: .nan has no JSON form (quote it for a string)"));
    CHECK(refused("x: 1e999", "YAML line 1, column 4: number 1e999 is out of range"));
    CHECK(refused("x: 0xffffffffffffffffff",
                  "YAML line 1, column 4: integer 0xffffffffffffffffff is out of range"));
    CHECK(gives("x: '.inf'", "{\"x\":\".inf\"}"));
    /* NUL in a string */
    CHECK(refused("x: \"a\\0b\"", "YAML line 1, column 4: a string must not contain NUL (\\0)"));
    /* malformed texts, with libyaml's words and where */
    CHECK(refused("a: 1\nb:\n  c: 1\n  d: e: f\n",
                  "YAML line 4, column 7: mapping values are not allowed in this context"));
    CHECK(refused("a: [1, 2\n", "YAML line 2, column 1: did not find expected ',' or ']'"));
    CHECK(refused("a: 1\n b: 2\n",
                  "YAML line 2, column 3: mapping values are not allowed in this context"));
    CHECK(refused("a: \"open\n", "YAML line 2, column 1: found unexpected end of stream"));
    CHECK(refused("a:\n\t- 1\n",
                  "YAML line 2, column 1: found character that cannot start any token"));
    /* not UTF-8: the reader's offset turned into a line and column */
    CHECK(refused("a: 1\nb: x\xff\n", "YAML line 2, column 5: invalid leading UTF-8 octet"));
}

static void sniffing(void)
{
    static const char *const yes[] = {
        "document:\n  dsl: 1.0.0\n",
        "# a workflow\n\n  # indented comment\ndocument:\n",
        "---\ndocument: {dsl: 1.0.0}\n",
        "%YAML 1.2\n--- # go\r\ndocument:\r\n",
        "document:",
    };
    static const char *const no[] = {
        "{\"document\":{}}",
        "do:\n  - a: {}\ndocument:\n",
        "  document:\n",
        "documents:\n",
        "document: x", /* ok: a scalar value still starts with the key */
        "\x7f"
        "ELF",
        "",
        "# nothing\n",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        CHECK(yj_starts_with_key(yes[i], strlen(yes[i]), "document"));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        CHECK(yj_starts_with_key(no[i], strlen(no[i]), "document") == (i == 4));
    /* the length is respected: no NUL needed */
    CHECK(!yj_starts_with_key("document:", 8, "document"));
}

int main(void)
{
    scalars();
    collections();
    refusals();
    sniffing();
    TEST_REPORT("unit_yamljson");
}
