/*
 * yamljson.c: see yamljson.h.
 *
 * libyaml's event API (yaml_parser_parse) feeds one event at a time into a
 * stack of open mappings and sequences; each value is added to the
 * container on top as soon as it is complete, so the tree is never more
 * than the text has said so far, and a refusal stops the parse at once.
 * libyaml resolves nothing itself: resolve_plain applies YAML 1.2's core
 * schema to plain scalars.
 *
 * Duplicate keys: the keys of every open mapping sit in one array, each
 * mapping's after those of the mappings around it (a mapping's keys are
 * contiguous because a nested mapping's keys are dropped when it ends).
 * When a mapping ends its keys are sorted and neighbours compared, which
 * stays O(n log n) whatever keys a hostile text chooses (a hash set would
 * not: FNV collisions are cheap to craft).
 *
 * Invariant: every error goes through fail_at/fail_offset, and the first
 * one wins; after it the caller frees the whole tree and stops.
 */
#include "yamljson.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_MAP "tag:yaml.org,2002:map"
#define TAG_SEQ "tag:yaml.org,2002:seq"

/* A plain scalar's type under the core schema. */
enum scalar_kind {
    SK_NULL,   /* null, Null, NULL, ~ or nothing */
    SK_TRUE,   /* true, True, TRUE */
    SK_FALSE,  /* false, False, FALSE */
    SK_INT8,   /* 0o17 */
    SK_INT16,  /* 0x1F */
    SK_NUMBER, /* a decimal integer or a float: strtod reads both */
    SK_NOTNUM, /* .inf, -.inf, .nan: no JSON form */
    SK_STRING  /* anything else */
};

/* A key of an open mapping, with where it was written. */
struct key_entry {
    const char *key; /* the object member's name (owned by the tree) */
    size_t line, column;
};

/* An open mapping or sequence. */
struct frame {
    cJSON *node;              /* an object or an array (owned by its parent, or the root) */
    size_t keys_from;         /* a mapping's first entry in conv.keys */
    char *key;                /* a mapping's key awaiting its value (malloc'ed), or NULL */
    size_t key_line, key_col; /* where that key was written */
};

/* One conversion's state. */
struct conv {
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
    int failed;
    cJSON *root;
    struct frame stack[YJ_MAX_DEPTH];
    int depth;
    long nodes;
    int documents;
    struct key_entry *keys; /* the open mappings' keys (malloc'ed) */
    size_t nkeys, capkeys;
};

/* Sets the error, "YAML line L, column C: <formatted>", unless one is set.
 * line and column are 0-based, as libyaml's marks are. Returns -1. */
static int fail_at(struct conv *c, size_t line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct conv *c, size_t line, size_t column, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->failed)
        return -1;
    c->failed = 1;
    n = snprintf(c->err, c->errlen, "YAML line %zu, column %zu: ", line + 1, column + 1);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* fail_at for a byte offset of the text (libyaml's reader reports only
 * that): counts the lines and the characters (not bytes) before it. */
static int fail_offset(struct conv *c, size_t offset, const char *problem)
{
    size_t line = 0, column = 0;

    for (size_t i = 0; i < offset && i < c->len; i++) {
        unsigned char ch = (unsigned char)c->text[i];
        if (ch == '\n') {
            line++;
            column = 0;
        } else if ((ch & 0xC0) != 0x80) {
            column++;
        }
    }
    return fail_at(c, line, column, "%s", problem);
}

/* The core schema's reading of a plain scalar s (n bytes). */
static enum scalar_kind resolve_plain(const char *s, size_t n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    static const char *const notnums[] = {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"};
    size_t i = 0, digits = 0, frac = 0;

    for (size_t k = 0; k < sizeof(nulls) / sizeof(nulls[0]); k++)
        if (strcmp(s, nulls[k]) == 0)
            return SK_NULL;
    for (size_t k = 0; k < 3; k++) {
        if (strcmp(s, trues[k]) == 0)
            return SK_TRUE;
        if (strcmp(s, falses[k]) == 0)
            return SK_FALSE;
    }
    if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        const char *set = s[1] == 'o' ? "01234567" : "0123456789abcdefABCDEF";
        for (i = 2; i < n && strchr(set, s[i]) != NULL; i++)
            ;
        if (i == n)
            return s[1] == 'o' ? SK_INT8 : SK_INT16;
        return SK_STRING;
    }
    if (s[0] == '-' || s[0] == '+')
        i = 1;
    for (size_t k = 0; k < sizeof(notnums) / sizeof(notnums[0]); k++)
        if (strcmp(s + i, notnums[k]) == 0 && (i == 0 || k < 3))
            return SK_NOTNUM;
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            frac++;
        if (digits == 0 && frac == 0)
            return SK_STRING;
    } else if (digits == 0) {
        return SK_STRING;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            exp++;
        if (exp == 0)
            return SK_STRING;
    }
    return i == n ? SK_NUMBER : SK_STRING;
}

/* The value of a plain scalar s (n bytes, NUL-terminated), or NULL after
 * an error at mark m. */
static cJSON *plain_value(struct conv *c, const char *s, size_t n, const yaml_mark_t *m)
{
    unsigned long long u;
    double d;
    char *end;

    switch (resolve_plain(s, n)) {
    case SK_NULL:
        return cJSON_CreateNull();
    case SK_TRUE:
        return cJSON_CreateTrue();
    case SK_FALSE:
        return cJSON_CreateFalse();
    case SK_INT8:
    case SK_INT16:
        errno = 0;
        u = strtoull(s + 2, &end, s[1] == 'o' ? 8 : 16);
        if (errno != 0 || *end != '\0') {
            fail_at(c, m->line, m->column, "integer %.40s is out of range", s);
            return NULL;
        }
        return cJSON_CreateNumber((double)u);
    case SK_NUMBER:
        errno = 0;
        d = strtod(s, &end);
        if (isinf(d) || *end != '\0') {
            fail_at(c, m->line, m->column, "number %.40s is out of range", s);
            return NULL;
        }
        return cJSON_CreateNumber(d);
    case SK_NOTNUM:
        fail_at(c, m->line, m->column, "%s has no JSON form (quote it for a string)", s);
        return NULL;
    case SK_STRING:
        break;
    }
    return cJSON_CreateString(s);
}

/* 1 when tag (libyaml's, resolved: NULL when none) is allowed on a node
 * whose own tag is own (TAG_MAP, TAG_SEQ or TAG_STR), else 0 after the
 * error. "!" is the non-specific tag: the node's own kind. */
static int tag_ok(struct conv *c, const yaml_char_t *tag, const char *own, const yaml_mark_t *m)
{
    const char *t = (const char *)tag;

    if (t == NULL || strcmp(t, "!") == 0 || strcmp(t, own) == 0)
        return 1;
    fail_at(c, m->line, m->column, "tag %.60s is not supported (only !!str, !!map and !!seq)", t);
    return 0;
}

/* Counts a node; 0 after the error when there are too many. */
static int count_node(struct conv *c, const yaml_mark_t *m)
{
    if (++c->nodes <= YJ_MAX_NODES)
        return 1;
    fail_at(c, m->line, m->column, "more than %d values", YJ_MAX_NODES);
    return 0;
}

/* Remembers the key just added to the top mapping. Returns 0, or -1
 * (out of memory, the error set). */
static int note_key(struct conv *c, const char *key, size_t line, size_t col)
{
    if (c->nkeys == c->capkeys) {
        size_t cap = c->capkeys > 0 ? c->capkeys * 2 : 64;
        struct key_entry *k = realloc(c->keys, cap * sizeof(*k));
        if (k == NULL)
            return fail_at(c, line, col, "out of memory");
        c->keys = k;
        c->capkeys = cap;
    }
    c->keys[c->nkeys].key = key;
    c->keys[c->nkeys].line = line;
    c->keys[c->nkeys].column = col;
    c->nkeys++;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const struct key_entry *x = a, *y = b;
    int r = strcmp(x->key, y->key);

    if (r != 0)
        return r;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->column < y->column ? -1 : x->column > y->column;
}

/* A mapping ended: refuses a key written twice in it (naming the second),
 * then drops its keys. Returns 0 or -1. */
static int check_keys(struct conv *c, size_t from)
{
    struct key_entry *k = c->keys + from;
    size_t n = c->nkeys - from;

    if (n > 1) /* qsort wants a base even for nothing: none before the first key */
        qsort(k, n, sizeof(*k), cmp_key);
    for (size_t i = 1; i < n; i++)
        if (strcmp(k[i - 1].key, k[i].key) == 0)
            return fail_at(c, k[i].line, k[i].column, "duplicate mapping key \"%.60s\"", k[i].key);
    c->nkeys = from;
    return 0;
}

/*
 * Adds node (taken: deleted on failure) to the open container on top, or
 * makes it the root. In a mapping it is the value of the pending key.
 * Returns 0 or -1 (the error set).
 */
static int place(struct conv *c, cJSON *node, const yaml_mark_t *m)
{
    struct frame *f = c->depth > 0 ? &c->stack[c->depth - 1] : NULL;

    if (node == NULL)
        return fail_at(c, m->line, m->column, "out of memory");
    if (f == NULL) {
        c->root = node;
        return 0;
    }
    if (cJSON_IsArray(f->node)) {
        if (!cJSON_AddItemToArray(f->node, node)) {
            cJSON_Delete(node);
            return fail_at(c, m->line, m->column, "out of memory");
        }
        return 0;
    }
    if (!cJSON_AddItemToObject(f->node, f->key, node)) {
        cJSON_Delete(node);
        return fail_at(c, m->line, m->column, "out of memory");
    }
    free(f->key);
    f->key = NULL;
    return note_key(c, node->string, f->key_line, f->key_col);
}

/* 1 when the top container is a mapping waiting for a key. */
static int wants_key(const struct conv *c)
{
    const struct frame *f = c->depth > 0 ? &c->stack[c->depth - 1] : NULL;

    return f != NULL && cJSON_IsObject(f->node) && f->key == NULL;
}

/* A scalar: a mapping's key, or a value. Returns 0 or -1. */
static int on_scalar(struct conv *c, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.tag == NULL;
    struct frame *f;

    if (!count_node(c, m) || !tag_ok(c, ev->data.scalar.tag, TAG_STR, m))
        return -1;
    if (memchr(s, '\0', n) != NULL)
        return fail_at(c, m->line, m->column, "a string must not contain NUL (\\0)");
    if (!wants_key(c))
        return place(c, plain ? plain_value(c, s, n, m) : cJSON_CreateString(s), m);
    if (plain && resolve_plain(s, n) != SK_STRING) {
        if (n == 0)
            return fail_at(c, m->line, m->column, "a mapping key must not be empty");
        return fail_at(c, m->line, m->column,
                       "mapping key %.40s is not a string (quote it to make it one)", s);
    }
    f = &c->stack[c->depth - 1];
    f->key = strdup(s);
    if (f->key == NULL)
        return fail_at(c, m->line, m->column, "out of memory");
    f->key_line = m->line;
    f->key_col = m->column;
    return 0;
}

/* A mapping or a sequence opens. Returns 0 or -1. */
static int on_open(struct conv *c, const yaml_event_t *ev, int mapping)
{
    const yaml_mark_t *m = &ev->start_mark;
    const yaml_char_t *tag = mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    cJSON *node;

    if (!count_node(c, m) || !tag_ok(c, tag, mapping ? TAG_MAP : TAG_SEQ, m))
        return -1;
    if (wants_key(c))
        return fail_at(c, m->line, m->column, "a mapping key must be a string, not a %s",
                       mapping ? "mapping" : "sequence");
    if (c->depth == YJ_MAX_DEPTH)
        return fail_at(c, m->line, m->column, "nested more than %d levels deep", YJ_MAX_DEPTH);
    node = mapping ? cJSON_CreateObject() : cJSON_CreateArray();
    if (place(c, node, m) != 0)
        return -1;
    c->stack[c->depth].node = node;
    c->stack[c->depth].keys_from = c->nkeys;
    c->stack[c->depth].key = NULL;
    c->depth++;
    return 0;
}

/* A mapping or a sequence closes. Returns 0 or -1. */
static int on_close(struct conv *c)
{
    struct frame *f = &c->stack[--c->depth];
    int rc = 0;

    if (cJSON_IsObject(f->node))
        rc = check_keys(c, f->keys_from);
    free(f->key); /* libyaml gives a missing value as an empty scalar: none here */
    f->key = NULL;
    return rc;
}

/* Anchors would let aliases repeat a subtree without end (the "billion
 * laughs"); refusing them is simpler than counting expansions. */
static int no_anchor(struct conv *c, const yaml_char_t *anchor, const yaml_mark_t *m)
{
    if (anchor == NULL)
        return 0;
    return fail_at(c, m->line, m->column, "anchors (&%.40s) and aliases are not supported",
                   (const char *)anchor);
}

/* One event. Returns 0 to go on, 1 at the end of the stream, -1 on error. */
static int on_event(struct conv *c, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (c->documents++ > 0)
            return fail_at(c, m->line, m->column, "a second document: only one is allowed");
        return 0;
    case YAML_STREAM_END_EVENT:
        if (c->documents == 0)
            return fail_at(c, m->line, m->column, "no document");
        return 1;
    case YAML_ALIAS_EVENT:
        return fail_at(c, m->line, m->column, "aliases (*%.40s) and anchors are not supported",
                       (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (no_anchor(c, ev->data.scalar.anchor, m) != 0)
            return -1;
        return on_scalar(c, ev);
    case YAML_MAPPING_START_EVENT:
        if (no_anchor(c, ev->data.mapping_start.anchor, m) != 0)
            return -1;
        return on_open(c, ev, 1);
    case YAML_SEQUENCE_START_EVENT:
        if (no_anchor(c, ev->data.sequence_start.anchor, m) != 0)
            return -1;
        return on_open(c, ev, 0);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return on_close(c);
    }
    return 0;
}

/* The parser's own error. Returns -1. */
static int parser_failed(struct conv *c, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "malformed";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return fail_at(c, p->mark.line, p->mark.column, "out of memory");
    case YAML_READER_ERROR:
        return fail_offset(c, p->problem_offset, problem);
    default:
        return fail_at(c, p->problem_mark.line, p->problem_mark.column, "%s", problem);
    }
}

cJSON *yj_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct conv *c = calloc(1, sizeof(*c));
    yaml_parser_t parser;
    yaml_event_t ev;
    cJSON *root;
    int rc = 0;

    if (errlen > 0)
        err[0] = '\0';
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->text = text;
    c->len = len;
    c->err = err;
    c->errlen = errlen;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        free(c);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_failed(c, &parser);
            break;
        }
        rc = on_event(c, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    /* on error the open containers hang from the root: one delete frees all */
    while (c->depth > 0)
        free(c->stack[--c->depth].key);
    root = c->root;
    if (rc < 0) {
        cJSON_Delete(root);
        root = NULL;
    }
    free(c->keys);
    free(c);
    return root;
}

int yj_starts_with_key(const char *text, size_t len, const char *key)
{
    size_t klen = strlen(key), i = 0;

    while (i < len) {
        size_t eol = i, j = i;

        while (eol < len && text[eol] != '\n')
            eol++;
        while (j < eol && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r'))
            j++;
        if (j == eol || text[j] == '#' || (j == i && text[i] == '%') ||
            (j == i && eol - i >= 3 && memcmp(text + i, "---", 3) == 0 &&
             (eol - i == 3 || text[i + 3] == ' ' || text[i + 3] == '\t' || text[i + 3] == '\r'))) {
            i = eol + 1;
            continue;
        }
        /* the first line with content */
        return j == i && eol - i > klen && memcmp(text + i, key, klen) == 0 &&
               text[i + klen] == ':' &&
               (i + klen + 1 == eol || text[i + klen + 1] == ' ' || text[i + klen + 1] == '\t' ||
                text[i + klen + 1] == '\r');
    }
    return 0;
}
