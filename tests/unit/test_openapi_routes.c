/*
 * test_openapi_routes.c: holds docs/openapi.yaml to the router. Fails when
 * the two disagree on the set of routes (method and path), or on which
 * ones need no token:
 *   - every route of server/http.c's table (http_route_at) must be an
 *     operation of the spec, and a public route must say `security: []`
 *     there (and only a public one);
 *   - every operation of the spec must be a route, except those of a path
 *     marked `x-wf-pending: true` (documented ahead of a branch that adds
 *     the route); a pending path that is routed fails too, so the marker is
 *     removed when the route lands;
 *   - the bytes built into the binary (GET /openapi.yaml) are the file's.
 *
 * The spec is read with a small, strict line reader of its `paths:`
 * section, not a YAML library: docs/openapi.yaml keeps a canonical layout
 * (described at its top) of path keys at two spaces, operation keys and
 * the path item's own keys at four, an operation's `security: []` at six.
 * Anything else at those indentations is an error, so a change of layout
 * fails here rather than being misread. `{name}` segments are the router's
 * `*`. The reader's own cases come first, on small documents written to a
 * temporary file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_openapi.h"
#include "http.h"
#include "testhelp.h"

#define MAX_OPS 128
#define LINE_MAX_LEN 1024

/* One operation of the spec's paths section. */
struct spec_op {
    char method[8];    /* upper case */
    char pattern[256]; /* the path with each {name} segment turned into "*" */
    char path[256];    /* the path as the spec writes it */
    int public_route;  /* the operation says `security: []` */
    int pending;       /* its path says `x-wf-pending: true` */
    int line;          /* of its key */
};

struct spec {
    struct spec_op ops[MAX_OPS];
    int n;
};

static const char *const methods[] = {"get",  "put",     "post",  "delete",
                                      "head", "options", "patch", "trace"};

/* 1 if s (a key line's text after its indentation) is exactly "key:" with
 * nothing but spaces after the colon. */
static int is_key(const char *s, const char *key)
{
    size_t n = strlen(key);

    if (strncmp(s, key, n) != 0 || s[n] != ':')
        return 0;
    for (s += n + 1; *s == ' '; s++)
        ;
    return *s == '\0';
}

/* Writes the router's form of path (each "{name}" segment as "*") into out.
 * Returns 0, or -1 with err set when a brace is not a whole segment. */
static int to_pattern(const char *path, char *out, size_t len, char *err, size_t errlen)
{
    size_t o = 0;

    for (const char *p = path; *p != '\0';) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (p[-1] != '/' || close == NULL || close == p + 1 ||
                (close[1] != '/' && close[1] != '\0')) {
                snprintf(err, errlen, "path %s: a {parameter} must be a whole segment", path);
                return -1;
            }
            if (o + 1 >= len)
                break;
            out[o++] = '*';
            p = close + 1;
            continue;
        }
        if (*p == '}') {
            snprintf(err, errlen, "path %s: stray '}'", path);
            return -1;
        }
        if (o + 1 >= len)
            break;
        out[o++] = *p++;
    }
    if (o + 1 >= len) {
        snprintf(err, errlen, "path %s: too long", path);
        return -1;
    }
    out[o] = '\0';
    return 0;
}

/*
 * Reads the paths section of the spec at path into *sp. Returns 0, or -1
 * with err set ("line N: why"); *sp is then partly filled.
 */
static int read_spec(const char *path, struct spec *sp, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[LINE_MAX_LEN + 2];
    char cur_path[256] = "";
    int cur_pending = 0, first_op_of_path = 0;
    int in_paths = 0, seen_paths = 0, lineno = 0, in_op = 0, rc = -1;

    sp->n = 0;
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        int ind = 0;
        const char *s;

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f)) {
            snprintf(err, errlen, "line %d: longer than %d bytes", lineno, LINE_MAX_LEN);
            goto out;
        }
        while (line[ind] == ' ')
            ind++;
        s = line + ind;
        if (*s == '\t') {
            snprintf(err, errlen, "line %d: a tab in the indentation", lineno);
            goto out;
        }
        if (*s == '\0' || *s == '#')
            continue; /* blank or a comment */
        if (!in_paths) {
            if (ind == 0 && is_key(s, "paths")) {
                if (seen_paths) {
                    snprintf(err, errlen, "line %d: a second paths section", lineno);
                    goto out;
                }
                in_paths = seen_paths = 1;
            }
            continue;
        }
        if (ind == 0)
            break; /* the next top-level key: the section is over */
        if (ind == 2) {
            char *colon = strrchr(line, ':');
            if (*s != '/' || colon == NULL || colon[1] != '\0') {
                snprintf(err, errlen,
                         "line %d: a key at two spaces in paths must be a path, "
                         "\"  /…:\" (the canonical layout)",
                         lineno);
                goto out;
            }
            if ((size_t)(colon - s) >= sizeof(cur_path)) {
                snprintf(err, errlen, "line %d: path too long", lineno);
                goto out;
            }
            memcpy(cur_path, s, (size_t)(colon - s));
            cur_path[colon - s] = '\0';
            for (int i = 0; i < sp->n; i++) {
                if (strcmp(sp->ops[i].path, cur_path) == 0) {
                    snprintf(err, errlen, "line %d: path %s appears twice", lineno, cur_path);
                    goto out;
                }
            }
            cur_pending = 0;
            first_op_of_path = sp->n;
            in_op = 0;
            continue;
        }
        if (cur_path[0] == '\0') {
            snprintf(err, errlen, "line %d: indented %d spaces before any path key", lineno, ind);
            goto out;
        }
        if (ind == 4) {
            size_t m;
            in_op = 0;
            for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                if (is_key(s, methods[m]))
                    break;
            }
            if (m < sizeof(methods) / sizeof(methods[0])) {
                struct spec_op *op;
                if (sp->n == MAX_OPS) {
                    snprintf(err, errlen, "line %d: more than %d operations", lineno, MAX_OPS);
                    goto out;
                }
                op = &sp->ops[sp->n++];
                memset(op, 0, sizeof(*op));
                for (size_t k = 0; methods[m][k] != '\0'; k++)
                    op->method[k] = (char)(methods[m][k] - 'a' + 'A');
                snprintf(op->path, sizeof(op->path), "%s", cur_path);
                if (to_pattern(cur_path, op->pattern, sizeof(op->pattern), err, errlen) < 0)
                    goto out;
                op->pending = cur_pending;
                op->line = lineno;
                for (int i = first_op_of_path; i < sp->n - 1; i++) {
                    if (strcmp(sp->ops[i].method, op->method) == 0) {
                        snprintf(err, errlen, "line %d: %s %s appears twice", lineno, op->method,
                                 cur_path);
                        goto out;
                    }
                }
                in_op = 1;
            } else if (strncmp(s, "x-wf-pending:", 13) == 0) {
                if (strcmp(s, "x-wf-pending: true") != 0) {
                    snprintf(err, errlen,
                             "line %d: write \"x-wf-pending: true\", or remove the marker", lineno);
                    goto out;
                }
                cur_pending = 1;
                for (int i = first_op_of_path; i < sp->n; i++)
                    sp->ops[i].pending = 1;
            } else if (!(is_key(s, "parameters") || strncmp(s, "summary:", 8) == 0 ||
                         strncmp(s, "description:", 12) == 0 || is_key(s, "servers") ||
                         strncmp(s, "x-", 2) == 0)) {
                snprintf(err, errlen, "line %d: unexpected key at four spaces under %s: %s", lineno,
                         cur_path, s);
                goto out;
            }
            continue;
        }
        if (ind < 6) {
            snprintf(err, errlen, "line %d: odd indentation (%d spaces)", lineno, ind);
            goto out;
        }
        if (ind == 6 && in_op && strncmp(s, "security:", 9) == 0) {
            if (strcmp(s, "security: []") != 0) {
                snprintf(err, errlen,
                         "line %d: an operation's security is either the document's (no key) "
                         "or public (\"security: []\")",
                         lineno);
                goto out;
            }
            sp->ops[sp->n - 1].public_route = 1;
            continue;
        }
        /* deeper: the operation's or the path item's content, not read here */
    }
    if (ferror(f)) {
        snprintf(err, errlen, "could not read %s", path);
        goto out;
    }
    if (!seen_paths) {
        snprintf(err, errlen, "no \"paths:\" line at column 0");
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* ---- the reader's own cases ---- */

/* Writes text to a temporary file and reads it; returns read_spec's result. */
static int read_text(const char *text, struct spec *sp, char *err, size_t errlen)
{
    char path[] = "/tmp/wf-openapi-reader-XXXXXX";
    int fd = mkstemp(path);
    int rc;

    if (fd < 0)
        return -2;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        unlink(path);
        return -2;
    }
    close(fd);
    rc = read_spec(path, sp, err, errlen);
    unlink(path);
    return rc;
}

static struct spec tsp; /* large: not on the stack */

static void test_reader(void)
{
    char err[256] = "";
    static const char good[] = "# a comment\n"
                               "openapi: 3.1.0\n"
                               "paths:\n"
                               "  /a:\n"
                               "    get:\n"
                               "      operationId: a\n"
                               "      security: []\n"
                               "      description: |\n"
                               "        security: [] (text, deeper)\n"
                               "    post:\n"
                               "      operationId: b\n"
                               "  /b/{id}/c/{name}:\n"
                               "    parameters:\n"
                               "      - name: x\n"
                               "    description: |\n"
                               "      security: [] (path-level text, not an operation's)\n"
                               "    delete:\n"
                               "      operationId: c\n"
                               "  /p:\n"
                               "    get:\n"
                               "      operationId: d\n"
                               "    x-wf-pending: true\n"
                               "\n"
                               "components:\n"
                               "  /not-a-path:\n"
                               "    get: {}\n";

    CHECK_INT(read_text(good, &tsp, err, sizeof(err)), 0);
    CHECK_INT(tsp.n, 4);
    if (tsp.n == 4) {
        CHECK_STR(tsp.ops[0].method, "GET");
        CHECK_STR(tsp.ops[0].pattern, "/a");
        CHECK_INT(tsp.ops[0].public_route, 1);
        CHECK_INT(tsp.ops[0].pending, 0);
        CHECK_STR(tsp.ops[1].method, "POST");
        CHECK_INT(tsp.ops[1].public_route, 0);
        CHECK_STR(tsp.ops[2].method, "DELETE");
        CHECK_STR(tsp.ops[2].pattern, "/b/*/c/*");
        CHECK_INT(tsp.ops[2].public_route, 0);
        CHECK_STR(tsp.ops[3].pattern, "/p");
        CHECK_INT(tsp.ops[3].pending, 1); /* the marker may follow the operations */
    }

    /* layouts the reader refuses rather than misreads */
    CHECK_INT(read_text("paths:\n   /a:\n    get:\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "odd indentation") != NULL || strstr(err, "before any path") != NULL);
    CHECK_INT(read_text("paths:\n  a:\n    get:\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "must be a path") != NULL);
    CHECK_INT(read_text("paths:\n  '/a':\n    get:\n", &tsp, err, sizeof(err)), -1);
    CHECK_INT(read_text("paths:\n  /a:\n    got:\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "unexpected key") != NULL);
    CHECK_INT(read_text("paths:\n  /a:\n    get:\n  /a:\n    put:\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "twice") != NULL);
    CHECK_INT(read_text("paths:\n  /a:\n    get:\n    get:\n", &tsp, err, sizeof(err)), -1);
    CHECK_INT(read_text("paths:\n  /a:\n    x-wf-pending: false\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "x-wf-pending") != NULL);
    CHECK_INT(read_text("paths:\n  /a:\n    get:\n      security:\n        - x: []\n", &tsp, err,
                        sizeof(err)),
              -1);
    CHECK_INT(read_text("paths:\n  /a{b}:\n    get:\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "whole segment") != NULL);
    CHECK_INT(read_text("paths:\n  /a:\n\t  get:\n", &tsp, err, sizeof(err)), -1);
    CHECK_INT(read_text("openapi: 3.1.0\n", &tsp, err, sizeof(err)), -1);
    CHECK(strstr(err, "no \"paths:\"") != NULL);
}

/* ---- the spec against the router ---- */

static struct spec sp;

static void test_routes_match(void)
{
    char err[256] = "";
    struct http_route_info rt, other;
    int nroutes = 0, npending = 0, routed[MAX_OPS] = {0};

    if (read_spec(WF_OPENAPI_SPEC, &sp, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", WF_OPENAPI_SPEC, err);
        CHECK(0);
        return;
    }
    CHECK(sp.n > 0);
    for (size_t i = 0; http_route_at(i, &rt) == 0; i++) {
        int found = -1;

        nroutes++;
        for (size_t j = 0; j < i; j++) {
            if (http_route_at(j, &other) == 0 && strcmp(other.method, rt.method) == 0 &&
                strcmp(other.pattern, rt.pattern) == 0) {
                fprintf(stderr, "router: %s %s is in the table twice\n", rt.method, rt.pattern);
                CHECK(0);
            }
        }
        for (int k = 0; k < sp.n; k++) {
            if (strcmp(sp.ops[k].method, rt.method) == 0 &&
                strcmp(sp.ops[k].pattern, rt.pattern) == 0)
                found = k;
        }
        if (found < 0) {
            fprintf(stderr, "router has %s %s, docs/openapi.yaml does not describe it\n", rt.method,
                    rt.pattern);
            CHECK(0);
            continue;
        }
        routed[found] = 1;
        if (sp.ops[found].pending) {
            fprintf(stderr,
                    "%s %s is routed now: remove `x-wf-pending: true` from its path in "
                    "docs/openapi.yaml (line %d)\n",
                    rt.method, sp.ops[found].path, sp.ops[found].line);
            CHECK(0);
        }
        if (sp.ops[found].public_route != rt.public_route) {
            fprintf(stderr, "%s %s: the router says %s, docs/openapi.yaml (line %d) says %s\n",
                    rt.method, sp.ops[found].path,
                    rt.public_route ? "public (no token)" : "token needed", sp.ops[found].line,
                    sp.ops[found].public_route ? "public (security: [])" : "token needed");
            CHECK(0);
        } else {
            CHECK(1);
        }
    }
    CHECK(nroutes > 0);
    for (int k = 0; k < sp.n; k++) {
        npending += sp.ops[k].pending;
        if (routed[k] || sp.ops[k].pending)
            continue;
        fprintf(stderr,
                "docs/openapi.yaml (line %d) describes %s %s, which the router does not "
                "have (mark its path `x-wf-pending: true` if a branch adds it)\n",
                sp.ops[k].line, sp.ops[k].method, sp.ops[k].path);
        CHECK(0);
    }
    printf("routes: %d in the router, %d operations in the spec (%d pending)\n", nroutes, sp.n,
           npending);
}

/* The bytes GET /openapi.yaml serves are the file's as it is now: the build
 * embedded the current docs/openapi.yaml. */
static void test_embedded(void)
{
    FILE *f = fopen(WF_OPENAPI_SPEC, "rb");
    size_t cap = api_openapi_yaml_len + 2, n;
    unsigned char *buf = malloc(cap);

    CHECK(f != NULL && buf != NULL);
    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    CHECK_INT(n, api_openapi_yaml_len);
    CHECK(n == api_openapi_yaml_len && memcmp(buf, api_openapi_yaml, n) == 0);
    CHECK_INT(api_openapi_yaml[api_openapi_yaml_len], 0);
    free(buf);
}

int main(void)
{
    test_reader();
    test_routes_match();
    test_embedded();
    TEST_REPORT("unit_openapi_routes");
}
