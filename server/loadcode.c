/*
 * loadcode.c: see loadcode.h.
 *
 * A load goes through three asynchronous steps, each resuming on the loop
 * thread: the code rows (dbq), the memfds of the artifacts not cached yet
 * (artfetch), the messages (wconn). Between steps only the worker's
 * connection id is held, and looked up again, since the worker may be gone
 * by then.
 *
 * The cache holds one sealed memfd per artifact, shared by every worker
 * that loads it (each gets its own duplicate through SCM_RIGHTS). An entry
 * lives while a connected worker's load names it: the shas of a load are
 * recorded as the worker's as soon as they are known, before the memfds are
 * asked for, and when a worker goes, every entry no remaining worker names
 * is closed.
 */
#include "loadcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artfetch.h"
#include "dbq.h"
#include "jsonutil.h"
#include "log.h"
#include "wconn.h"
#include "wview.h"

/* What the code loader keeps per worker connection (its user pointer). */
struct lc_worker {
    char (*shas)[65]; /* artifacts given or being prepared (kept by clean-ups) */
    size_t nshas;
    char *summary;    /* JSON text of the code sent or confirmed, or NULL */
    int load_started; /* the load was asked for (once per socket) */
    cJSON *claim;     /* a hello's claimed code, checked once the view is ready */
};

/* One cached artifact. */
struct lc_art {
    char sha[65];
    int fd; /* sealed memfd */
};

struct loadcode {
    struct loop *loop;
    struct dbq *dbq;
    struct wview *view;
    struct wconns *wc;
    struct artfetch *af;
    int view_ready;
    struct lc_art *arts; /* the cache */
    size_t narts, caparts;
};

/* One load between its steps. */
struct lc_req {
    struct loadcode *lc;
    uint64_t wid;
    char project[WF_ID_MAX + 1];
    struct loadcode_row *rows; /* strings owned by strs */
    size_t nrows;
    char **strs;
    size_t nstrs;
    const char **missing; /* the shas not cached when the rows came (in strs) */
    size_t nmissing;
};

static void req_free(struct lc_req *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nstrs; i++)
        free(q->strs[i]);
    free(q->strs);
    free(q->rows);
    free(q->missing);
    free(q);
}

static struct lc_worker *state_of(struct wconn *w)
{
    struct lc_worker *st = wconn_user(w);

    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st != NULL)
            wconn_set_user(w, st);
    }
    return st;
}

static void state_free(struct lc_worker *st)
{
    if (st == NULL)
        return;
    free(st->shas);
    free(st->summary);
    cJSON_Delete(st->claim);
    free(st);
}

/* ---- the message (pure) ---- */

cJSON *loadcode_error_message(const char *err)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "t", "load") == NULL ||
        cJSON_AddStringToObject(o, "error", err) == NULL ||
        cJSON_AddBoolToObject(o, "transient", 1) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Appends a new string to arr; 0 or -1 (ENOMEM). */
static int append_str(cJSON *arr, const char *s)
{
    return ju_append(arr, cJSON_CreateString(s));
}

/* Appends {k1:v1, k2:v2[, k3:v3]} to arr; 0 or -1 (ENOMEM). */
static int append_pairs(cJSON *arr, const char *k1, const char *v1, const char *k2, const char *v2,
                        const char *k3, const char *v3)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, k1, v1) == NULL ||
        cJSON_AddStringToObject(o, k2, v2) == NULL ||
        (k3 != NULL && cJSON_AddStringToObject(o, k3, v3) == NULL)) {
        cJSON_Delete(o);
        return -1;
    }
    return ju_append(arr, o);
}

cJSON *loadcode_build(const struct loadcode_row *rows, size_t n, char **summary)
{
    cJSON *load = cJSON_CreateObject();
    cJSON *sum = cJSON_CreateObject();
    cJSON *wf, *act, *arts, *provides, *swf, *sact, *splug, *scode;
    int ok = load != NULL && sum != NULL;

    *summary = NULL;
    ok = ok && cJSON_AddStringToObject(load, "t", "load") != NULL;
    wf = ok ? cJSON_AddArrayToObject(load, "workflows") : NULL;
    act = ok ? cJSON_AddArrayToObject(load, "activities") : NULL;
    arts = ok ? cJSON_AddArrayToObject(load, "artifacts") : NULL;
    provides = ok ? cJSON_AddArrayToObject(load, "provides") : NULL;
    swf = ok ? cJSON_AddArrayToObject(sum, "workflows") : NULL;
    sact = ok ? cJSON_AddArrayToObject(sum, "activities") : NULL;
    splug = ok ? cJSON_AddArrayToObject(sum, "plugins") : NULL;
    /* Which artifact each workflow runs: new runs are pinned to it. */
    scode = ok ? cJSON_AddObjectToObject(sum, "workflowCode") : NULL;
    ok = ok && wf != NULL && act != NULL && arts != NULL && provides != NULL && swf != NULL &&
         sact != NULL && splug != NULL && scode != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const struct loadcode_row *r = &rows[i];
        int workflow = strcmp(r->kind, "workflow") == 0;
        int seen = 0;

        ok = append_str(workflow ? wf : act, r->name) == 0 &&
             append_str(workflow ? swf : sact, r->name) == 0;
        if (!ok || r->sha256 == NULL)
            continue; /* declared without code yet */
        ok = append_pairs(provides, "kind", r->kind, "name", r->name, NULL, NULL) == 0 &&
             (!workflow || cJSON_AddStringToObject(scode, r->name, r->sha256) != NULL);
        for (size_t j = 0; j < i; j++)
            seen |= rows[j].sha256 != NULL && strcmp(rows[j].sha256, r->sha256) == 0;
        if (!ok || seen)
            continue;
        ok = append_pairs(arts, "label", r->name, "sha256", r->sha256, NULL, NULL) == 0 &&
             append_pairs(splug, "name", r->name, "sha256", r->sha256, NULL, NULL) == 0;
    }
    if (ok) {
        *summary = cJSON_PrintUnformatted(sum);
        ok = *summary != NULL;
    }
    if (ok) {
        /* The worker keeps the summary and shows it to the next core. */
        ok = ju_set(load, "summary", sum) == 0;
        sum = NULL; /* ju_set took it, even when it failed */
    }
    cJSON_Delete(sum);
    if (!ok) {
        free(*summary);
        *summary = NULL;
        cJSON_Delete(load);
        return NULL;
    }
    return load;
}

/* ---- the steps ---- */

/* Sends err as a transient load error (core's failure, not the code's). */
static void send_error(struct wconn *w, const char *err)
{
    cJSON *m = loadcode_error_message(err);

    log_error("project %s: %s", wconn_project(w), err);
    if (m == NULL) {
        wconn_reset(w, "could not tell it why its code is missing: out of memory");
        return;
    }
    (void)wconn_send(w, m);
    cJSON_Delete(m);
}

/* ---- the cache of sealed memfds ---- */

static int cache_fd(const struct loadcode *lc, const char *sha)
{
    for (size_t i = 0; i < lc->narts; i++) {
        if (strcmp(lc->arts[i].sha, sha) == 0)
            return lc->arts[i].fd;
    }
    return -1;
}

/* Keeps fd as sha's memfd (taken; closed if sha is cached already or on
 * ENOMEM). */
static void cache_put(struct loadcode *lc, const char *sha, int fd)
{
    if (cache_fd(lc, sha) >= 0) {
        close(fd);
        return;
    }
    if (lc->narts == lc->caparts) {
        size_t cap = lc->caparts ? 2 * lc->caparts : 16;
        struct lc_art *a = realloc(lc->arts, cap * sizeof(*a));
        if (a == NULL) {
            close(fd); /* the next load fetches it again */
            return;
        }
        lc->arts = a;
        lc->caparts = cap;
    }
    snprintf(lc->arts[lc->narts].sha, sizeof(lc->arts[lc->narts].sha), "%s", sha);
    lc->arts[lc->narts].fd = fd;
    lc->narts++;
}

struct name_search {
    const struct wconn *skip;
    const char *sha;
    int found;
};

static void find_user(void *arg, struct wconn *w)
{
    struct name_search *ns = arg;
    const struct lc_worker *st = wconn_user(w);

    if (w == ns->skip || st == NULL)
        return;
    for (size_t i = 0; i < st->nshas; i++)
        ns->found |= strcmp(st->shas[i], ns->sha) == 0;
}

/* Closes every cached memfd no connected worker (but skip) names. */
static void cache_gc(struct loadcode *lc, const struct wconn *skip)
{
    size_t i = 0;

    while (i < lc->narts) {
        struct name_search ns = {skip, lc->arts[i].sha, 0};
        if (lc->wc != NULL)
            wconns_each(lc->wc, NULL, find_user, &ns);
        if (ns.found) {
            i++;
            continue;
        }
        close(lc->arts[i].fd);
        lc->arts[i] = lc->arts[--lc->narts];
    }
}

/* The worker a request is for, or NULL when it is gone (or the channels
 * are, at shutdown). */
static struct wconn *req_worker(const struct lc_req *q)
{
    return q->lc->wc != NULL ? wconns_find(q->lc->wc, q->wid) : NULL;
}

/* Sends w each distinct artifact of q as {"t":"artifact","sha256"} with
 * its memfd. Returns 0, or -1 if w was reset or a memfd is missing (then an
 * error was sent instead). */
static int send_artifacts(struct loadcode *lc, struct wconn *w, const struct lc_req *q)
{
    for (size_t i = 0; i < q->nrows; i++) {
        const char *sha = q->rows[i].sha256;
        int seen = 0, fd;
        cJSON *m;

        if (sha == NULL)
            continue;
        for (size_t j = 0; j < i; j++)
            seen |= q->rows[j].sha256 != NULL && strcmp(q->rows[j].sha256, sha) == 0;
        if (seen)
            continue;
        fd = cache_fd(lc, sha);
        if (fd < 0) {
            send_error(w, "could not prepare the project's code: out of memory");
            return -1;
        }
        m = cJSON_CreateObject();
        if (m == NULL || cJSON_AddStringToObject(m, "t", "artifact") == NULL ||
            cJSON_AddStringToObject(m, "sha256", sha) == NULL) {
            cJSON_Delete(m);
            send_error(w, "could not prepare the project's code: out of memory");
            return -1;
        }
        if (wconn_send_fd(w, m, fd) < 0) {
            cJSON_Delete(m);
            return -1; /* w was reset */
        }
        cJSON_Delete(m);
    }
    return 0;
}

/* Step 3: every artifact is cached: send the memfds, then the load. */
static void send_load(struct loadcode *lc, struct wconn *w, struct lc_req *q)
{
    struct lc_worker *st;
    char *summary = NULL;
    cJSON *load;

    if (send_artifacts(lc, w, q) < 0)
        return;
    load = loadcode_build(q->rows, q->nrows, &summary);
    if (load == NULL) {
        send_error(w, "could not build the load message: out of memory");
        return;
    }
    st = state_of(w);
    if (st != NULL) {
        free(st->summary);
        st->summary = summary;
        summary = NULL;
    }
    free(summary);
    (void)wconn_send(w, load); /* on failure w was reset */
    cJSON_Delete(load);
}

/* The memfds of a request's missing artifacts are made (or not). */
static void on_fetched(void *arg, const int *fds, const char *err)
{
    struct lc_req *q = arg;
    struct loadcode *lc = q->lc;
    struct wconn *w;
    char msg[1000];

    for (size_t i = 0; fds != NULL && i < q->nmissing; i++)
        cache_put(lc, q->missing[i], fds[i]);
    w = req_worker(q);
    if (w == NULL) {
        if (lc->wc != NULL)
            cache_gc(lc, NULL); /* what it alone asked for */
        req_free(q);
        return;
    }
    if (fds == NULL) {
        snprintf(msg, sizeof(msg), "could not prepare the project's code: %s", err);
        send_error(w, msg);
    } else {
        send_load(lc, w, q);
    }
    req_free(q);
}

/* Keeps a copy of s in the request; NULL on ENOMEM. */
static const char *keep_str(struct lc_req *q, const char *s)
{
    char *c = strdup(s);

    if (c == NULL)
        return NULL;
    q->strs[q->nstrs++] = c;
    return c;
}

/* Step 2: the project's code rows are in: record the shas, ask for files. */
static void on_rows(void *arg, const struct dbq_result *r)
{
    struct lc_req *q = arg;
    struct wconn *w = req_worker(q);
    struct lc_worker *st;
    const char **shas = NULL;
    size_t nshas = 0;
    char msg[700];
    int n, ok = 1;

    if (w == NULL) {
        req_free(q);
        return;
    }
    if (r->outcome != DBQ_OK) {
        snprintf(msg, sizeof(msg), "could not read the project's code: %s", r->message);
        send_error(w, msg);
        req_free(q);
        return;
    }
    n = PQntuples(r->res);
    q->rows = calloc((size_t)n + 1, sizeof(*q->rows));
    q->strs = calloc(3 * (size_t)n + 1, sizeof(*q->strs));
    shas = calloc((size_t)n + 1, sizeof(*shas));
    st = state_of(w);
    ok = q->rows != NULL && q->strs != NULL && shas != NULL && st != NULL;
    for (int i = 0; ok && i < n; i++) {
        struct loadcode_row *row = &q->rows[i];
        int seen = 0;
        row->kind = keep_str(q, PQgetvalue(r->res, i, 0));
        row->name = keep_str(q, PQgetvalue(r->res, i, 1));
        ok = row->kind != NULL && row->name != NULL;
        if (!ok || PQgetisnull(r->res, i, 2))
            continue;
        row->sha256 = keep_str(q, PQgetvalue(r->res, i, 2));
        ok = row->sha256 != NULL;
        for (size_t j = 0; ok && j < nshas; j++)
            seen |= strcmp(shas[j], row->sha256) == 0;
        if (ok && !seen)
            shas[nshas++] = row->sha256;
    }
    q->nrows = (size_t)n;
    if (ok) {
        /* Named by this worker from now on: the cache keeps them. */
        char(*copy)[65] = calloc(nshas + 1, sizeof(*copy));
        q->missing = calloc(nshas + 1, sizeof(*q->missing));
        ok = copy != NULL && q->missing != NULL;
        for (size_t i = 0; ok && i < nshas; i++) {
            snprintf(copy[i], sizeof(copy[i]), "%s", shas[i]);
            if (cache_fd(q->lc, shas[i]) < 0)
                q->missing[q->nmissing++] = shas[i];
        }
        if (ok) {
            free(st->shas);
            st->shas = copy;
            st->nshas = nshas;
        } else {
            free(copy);
        }
    }
    free(shas);
    if (!ok) {
        send_error(w, "could not prepare the project's code: out of memory");
        req_free(q);
        return;
    }
    if (q->nmissing == 0) {
        send_load(q->lc, w, q);
        req_free(q);
        return;
    }
    if (artfetch_fetch(q->lc->af, q->missing, q->nmissing, on_fetched, q) < 0) {
        send_error(w, "could not prepare the project's code: out of memory");
        req_free(q);
    }
}

void loadcode_send(struct loadcode *lc, struct wconn *w)
{
    struct lc_worker *st = state_of(w);
    struct lc_req *q;
    const char *params[1];

    if (st == NULL) {
        send_error(w, "could not prepare the project's code: out of memory");
        return;
    }
    if (st->load_started)
        return;
    st->load_started = 1;
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        send_error(w, "could not prepare the project's code: out of memory");
        return;
    }
    q->lc = lc;
    q->wid = wconn_id(w);
    snprintf(q->project, sizeof(q->project), "%s", wconn_project(w));
    params[0] = q->project;
    if (dbq_exec(lc->dbq, DBQ_FAST, DBQ_RETRY_SAFE,
                 "SELECT 'workflow', kebab_name, artifact_sha256 FROM workflows"
                 " WHERE project_id = $1 AND is_active"
                 " UNION ALL SELECT 'activity', name, artifact_sha256 FROM components"
                 " WHERE project_id = $1 AND is_active AND kind = 'activity'"
                 " ORDER BY 1 DESC, 2",
                 1, params, NULL, NULL, on_rows, q) < 0) {
        req_free(q);
        send_error(w, "could not read the project's code: out of memory");
    }
}

/* ---- claims of workers that survived a core restart ---- */

/* Checks w's claimed code against what the previous core recorded. */
static void check_claim(struct loadcode *lc, struct wconn *w, struct lc_worker *st)
{
    cJSON *claim = st->claim;
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(claim, "plugins");
    char *recorded = wview_loaded(lc->view, wconn_project(w));
    cJSON *expect = recorded != NULL ? cJSON_Parse(recorded) : NULL;
    const cJSON *p;

    free(recorded);
    st->claim = NULL;
    if (!wconn_draining(w) && (expect == NULL || !cJSON_Compare(expect, claim, 1))) {
        cJSON_Delete(expect);
        cJSON_Delete(claim);
        wconn_reset(w, "it claims code that core's record does not show it was given");
        return;
    }
    cJSON_Delete(expect);
    free(st->summary);
    st->summary = cJSON_PrintUnformatted(claim);
    free(st->shas);
    st->nshas = 0;
    st->shas = calloc((size_t)cJSON_GetArraySize(plugins) + 1, sizeof(*st->shas));
    cJSON_ArrayForEach(p, plugins)
    {
        const char *sha = ju_str(p, "sha256");
        if (st->shas != NULL && sha != NULL && strlen(sha) == 64)
            snprintf(st->shas[st->nshas++], 65, "%s", sha);
    }
    cJSON_Delete(claim);
}

void loadcode_on_hello(struct loadcode *lc, struct wconn *w, const cJSON *hello)
{
    struct lc_worker *st;
    const cJSON *code;

    if (!ju_bool(hello, "loaded")) {
        loadcode_send(lc, w);
        return;
    }
    code = cJSON_GetObjectItemCaseSensitive(hello, "code");
    st = state_of(w);
    if (!cJSON_IsObject(code)) {
        wconn_reset(w, "malformed hello: loaded without a code summary");
        return;
    }
    if (st == NULL) {
        wconn_reset(w, "could not check its code: out of memory");
        return;
    }
    cJSON_Delete(st->claim);
    st->claim = cJSON_Duplicate(code, 1);
    if (st->claim == NULL) {
        wconn_reset(w, "could not check its code: out of memory");
        return;
    }
    if (lc->view_ready)
        check_claim(lc, w, st);
}

struct claim_sweep {
    struct loadcode *lc;
    uint64_t ids[256];
    size_t n;
};

static void collect_claims(void *arg, struct wconn *w)
{
    struct claim_sweep *cs = arg;
    struct lc_worker *st = wconn_user(w);

    if (st != NULL && st->claim != NULL && cs->n < sizeof(cs->ids) / sizeof(cs->ids[0]))
        cs->ids[cs->n++] = wconn_id(w);
}

void loadcode_view_ready(struct loadcode *lc)
{
    struct claim_sweep cs;

    lc->view_ready = 1;
    /* check_claim may reset (free) connections: collect first, then look
     * each up again. More than 256 pending claims take several rounds. */
    do {
        cs.lc = lc;
        cs.n = 0;
        wconns_each(lc->wc, NULL, collect_claims, &cs);
        for (size_t i = 0; i < cs.n; i++) {
            struct wconn *w = wconns_find(lc->wc, cs.ids[i]);
            if (w != NULL && wconn_user(w) != NULL)
                check_claim(lc, w, wconn_user(w));
        }
    } while (cs.n == sizeof(cs.ids) / sizeof(cs.ids[0]));
}

/* ---- clean-up ---- */

void loadcode_gone(struct loadcode *lc, struct wconn *w)
{
    state_free(wconn_user(w));
    wconn_set_user(w, NULL);
    cache_gc(lc, w);
}

const char *loadcode_summary(struct loadcode *lc, const struct wconn *w)
{
    const struct lc_worker *st = wconn_user(w);

    return st != NULL ? st->summary : NULL;
}

struct loadcode *loadcode_new(struct loop *l, struct dbq *q, struct wview *v, struct wconns *wc,
                              struct artfetch *af)
{
    struct loadcode *lc = calloc(1, sizeof(*lc));

    if (lc == NULL)
        return NULL;
    lc->loop = l;
    lc->dbq = q;
    lc->view = v;
    lc->wc = wc;
    lc->af = af;
    return lc;
}

void loadcode_detach(struct loadcode *lc)
{
    lc->wc = NULL;
}

void loadcode_free(struct loadcode *lc)
{
    if (lc == NULL)
        return;
    for (size_t i = 0; i < lc->narts; i++)
        close(lc->arts[i].fd);
    free(lc->arts);
    free(lc);
}

/* ---- older versions ---- */

struct lc_prov {
    struct loadcode *lc;
    uint64_t wid;
    char sha[65];
    loadcode_provided_fn done;
    void *arg;
};

/* Sends w the memfd of sha and the version message. 0, or -1 (w reset,
 * or out of memory: then err says so and w is intact). */
static int send_version(struct loadcode *lc, struct wconn *w, const char *sha, const char **err)
{
    int fd = cache_fd(lc, sha);
    cJSON *m = cJSON_CreateObject();

    *err = "out of memory";
    if (fd < 0 || m == NULL || cJSON_AddStringToObject(m, "t", "artifact") == NULL ||
        cJSON_AddStringToObject(m, "sha256", sha) == NULL) {
        cJSON_Delete(m);
        return -1;
    }
    if (wconn_send_fd(w, m, fd) < 0) {
        cJSON_Delete(m);
        *err = "the worker was reset";
        return -1;
    }
    cJSON_DeleteItemFromObject(m, "t");
    if (cJSON_AddStringToObject(m, "t", "version") == NULL || wconn_send(w, m) < 0) {
        cJSON_Delete(m);
        *err = "the worker was reset";
        return -1;
    }
    cJSON_Delete(m);
    return 0;
}

/* Records sha as one w holds (the cache keeps it). 0 or -1 (ENOMEM). */
static int name_sha(struct wconn *w, const char *sha)
{
    struct lc_worker *st = state_of(w);
    char(*n)[65];

    if (st == NULL)
        return -1;
    for (size_t i = 0; i < st->nshas; i++) {
        if (strcmp(st->shas[i], sha) == 0)
            return 0;
    }
    n = realloc(st->shas, (st->nshas + 1) * sizeof(*n));
    if (n == NULL)
        return -1;
    st->shas = n;
    snprintf(st->shas[st->nshas++], sizeof(st->shas[0]), "%s", sha);
    return 0;
}

static void on_version_fetched(void *arg, const int *fds, const char *err)
{
    struct lc_prov *p = arg;
    struct loadcode *lc = p->lc;
    struct wconn *w;
    const char *why = NULL;
    char msg[900];

    if (fds != NULL)
        cache_put(lc, p->sha, fds[0]);
    w = lc->wc != NULL ? wconns_find(lc->wc, p->wid) : NULL;
    if (w == NULL) {
        if (lc->wc != NULL)
            cache_gc(lc, NULL);
        p->done(p->arg, p->wid, p->sha, "the worker is gone");
    } else if (fds == NULL) {
        snprintf(msg, sizeof(msg), "could not prepare code version %.12s: %s", p->sha, err);
        p->done(p->arg, p->wid, p->sha, msg);
    } else if (send_version(lc, w, p->sha, &why) < 0) {
        snprintf(msg, sizeof(msg), "could not send code version %.12s: %s", p->sha, why);
        p->done(p->arg, p->wid, p->sha, msg);
    } else {
        p->done(p->arg, p->wid, p->sha, NULL);
    }
    free(p);
}

int loadcode_provide(struct loadcode *lc, struct wconn *w, const char *sha,
                     loadcode_provided_fn done, void *arg)
{
    struct lc_prov *p;
    const char *why;

    if (name_sha(w, sha) < 0)
        return -1;
    if (cache_fd(lc, sha) >= 0)
        return send_version(lc, w, sha, &why) < 0 ? -1 : 1;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    p->lc = lc;
    p->wid = wconn_id(w);
    snprintf(p->sha, sizeof(p->sha), "%s", sha);
    p->done = done;
    p->arg = arg;
    {
        const char *shas[1] = {p->sha};
        if (artfetch_fetch(lc->af, shas, 1, on_version_fetched, p) < 0) {
            free(p);
            return -1;
        }
    }
    return 0;
}
