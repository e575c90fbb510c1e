/*
 * loadcode.c: what a worker is told to load. Core reads the project's
 * active code rows, makes sure each artifact is a verified file under this
 * instance's runtime directory (artifacts.c), and sends the worker the
 * paths with the names each must provide; it removes the files no connected
 * worker of the project uses. Dispatcher thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts.h"
#include "dispatcher.h"
#include "log.h"
#include "msg.h"

/* Removes the project's artifact files no connected worker uses. */
void disp_gc_project(struct dispatcher *d, const char *project)
{
    const char **keep;
    size_t n = 0, cap = 0;

    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (strcmp(w->project, project) == 0)
            cap += w->nshas;
    }
    keep = calloc(cap + 1, sizeof(*keep));
    if (keep == NULL)
        return;
    for (struct wconn *w = d->wconns; w != NULL; w = w->next) {
        if (strcmp(w->project, project) != 0)
            continue;
        for (size_t i = 0; i < w->nshas; i++)
            keep[n++] = w->shas[i];
    }
    art_gc(d->c->rundir, project, keep, n);
    free(keep);
}

/*
 * Builds a worker's load message from its project's active code rows (kind,
 * name, sha256), writing each artifact file it needs. The summary kept for
 * status and the row's `loaded` column is {"workflows","activities",
 * "plugins":[{"name","sha256"}]}. On a failure the message carries "error".
 */
static cJSON *build_load(struct dispatcher *d, struct wconn *w, const PGresult *r)
{
    cJSON *load = cJSON_CreateObject();
    cJSON *wf = cJSON_AddArrayToObject(load, "workflows");
    cJSON *act = cJSON_AddArrayToObject(load, "activities");
    cJSON *arts = cJSON_AddArrayToObject(load, "artifacts");
    cJSON *provides = cJSON_AddArrayToObject(load, "provides");
    cJSON *summary = cJSON_CreateObject();
    cJSON *plugins;
    char path[4200], err[600];
    int n = PQntuples(r);

    cJSON_AddStringToObject(load, "t", "load");
    free(w->shas);
    w->nshas = 0;
    w->shas = calloc((size_t)n + 1, sizeof(*w->shas));
    for (int i = 0; i < n && w->shas != NULL; i++) {
        const char *kind = PQgetvalue(r, i, 0);
        const char *name = PQgetvalue(r, i, 1);
        const char *sha = PQgetvalue(r, i, 2);
        int seen = 0;
        cJSON *a;

        ju_append(strcmp(kind, "workflow") == 0 ? wf : act, cJSON_CreateString(name));
        if (PQgetisnull(r, i, 2))
            continue; /* declared without code yet */
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "kind", kind);
        cJSON_AddStringToObject(a, "name", name);
        ju_append(provides, a);
        for (size_t j = 0; j < w->nshas; j++)
            seen |= strcmp(w->shas[j], sha) == 0;
        if (seen)
            continue;
        if (art_materialize(d->c->dconn, d->c->rundir, w->project, sha, path, sizeof(path), err,
                            sizeof(err)) < 0) {
            char msg[800];
            snprintf(msg, sizeof(msg), "could not prepare plugin \"%s\": %s", name, err);
            log_error("project %s: %s", w->project, msg);
            cJSON_AddStringToObject(load, "error", msg);
            break;
        }
        snprintf(w->shas[w->nshas++], 65, "%s", sha);
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "label", name);
        cJSON_AddStringToObject(a, "path", path);
        cJSON_AddStringToObject(a, "sha256", sha);
        ju_append(arts, a);
    }
    ju_set(summary, "workflows", cJSON_Duplicate(wf, 1));
    ju_set(summary, "activities", cJSON_Duplicate(act, 1));
    plugins = cJSON_AddArrayToObject(summary, "plugins");
    for (cJSON *a = arts != NULL ? arts->child : NULL; a != NULL; a = a->next) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", ju_str(a, "label"));
        cJSON_AddStringToObject(p, "sha256", ju_str(a, "sha256"));
        ju_append(plugins, p);
    }
    free(w->loaded);
    w->loaded = cJSON_PrintUnformatted(summary);
    /* The worker keeps the summary and shows it to the next core. */
    ju_set(load, "summary", summary);
    return load;
}

/* Sends a worker its project's code (or why it cannot have it), once. */
void disp_send_load(struct dispatcher *d, struct wconn *w)
{
    const char *params[1] = {w->project};
    cJSON *load;
    PGresult *r;

    r = db_exec(d->c->dconn,
                "SELECT 'workflow', kebab_name, artifact_sha256 FROM workflows"
                " WHERE project_id = $1 AND is_active"
                " UNION ALL SELECT 'activity', name, artifact_sha256 FROM components"
                " WHERE project_id = $1 AND is_active AND kind = 'activity'"
                " ORDER BY 1 DESC, 2",
                1, params);
    if (r == NULL) {
        char err[400];
        snprintf(err, sizeof(err), "could not read the project's code: %s", db_error(d->c->dconn));
        log_error("project %s: %s", w->project, err);
        load = cJSON_CreateObject();
        cJSON_AddStringToObject(load, "t", "load");
        cJSON_AddStringToObject(load, "error", err);
    } else {
        load = build_load(d, w, r);
        PQclear(r);
    }
    /* A failure here is core's (database, disk), not the plugin's. */
    if (cJSON_GetObjectItemCaseSensitive(load, "error") != NULL)
        cJSON_AddBoolToObject(load, "transient", 1);
    w->load_sent = 1;
    if (msg_send(w->fd, load, -1) < 0)
        log_error("could not send code to worker %d: %s", (int)w->pid, strerror(errno));
    cJSON_Delete(load);
}

/* A worker's greeting: send it its project's code unless it has it (it
 * survived a core restart) or was sent it already (at its attach). */
void disp_on_worker_hello(struct dispatcher *d, struct wconn *w, const cJSON *msg)
{
    if (ju_bool(msg, "loaded")) {
        /* It survived a core restart with its code: learn what it has. */
        cJSON *code = cJSON_GetObjectItemCaseSensitive(msg, "code");
        if (cJSON_IsObject(code)) {
            const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(code, "plugins");
            const cJSON *p;
            struct core_view *v;
            free(w->loaded);
            w->loaded = cJSON_PrintUnformatted(code);
            free(w->shas);
            w->nshas = 0;
            w->shas = calloc((size_t)cJSON_GetArraySize(plugins) + 1, sizeof(*w->shas));
            cJSON_ArrayForEach(p, plugins)
            {
                if (w->shas != NULL && art_valid_sha(ju_str(p, "sha256")))
                    snprintf(w->shas[w->nshas++], 65, "%s", ju_str(p, "sha256"));
            }
            pthread_rwlock_wrlock(&d->c->view_lock);
            v = idmap_get(&d->c->views, w->project);
            if (v != NULL && v->pid == w->pid)
                disp_view_set_str(&v->loaded, w->loaded);
            pthread_rwlock_unlock(&d->c->view_lock);
        }
        return;
    }
    if (!w->load_sent)
        disp_send_load(d, w);
}
