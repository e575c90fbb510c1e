/*
 * loadcode.h: what a worker is told to load, and what core believes it
 * loaded.
 *
 * For a worker that needs code, core reads the project's active code rows
 * (through the database layer), has the artifact thread make a sealed,
 * verified memfd of each artifact not cached yet (artfetch.h,
 * artifacts.h), and sends the worker each memfd, then one load message:
 *
 *   {"t":"artifact","sha256"} + the artifact's sealed memfd, once per
 *   artifact; then
 *   {"t":"load","workflows":[names],"activities":[names],
 *    "artifacts":[{"label","sha256"}],"provides":[{"kind","name"}],
 *    "summary":{"workflows","activities","plugins":[{"name","sha256"}]}}
 *   or {"t":"load","error":"…","transient":true} when core could not
 *   provide the code (database): not the code's fault.
 *
 * The summary is what status and the row's `loaded` column show. A worker
 * that survived a core restart claims its summary in its hello; the claim
 * must equal what the previous core recorded in its row, else the worker
 * is reset (a draining worker, which takes no new work, is believed).
 * Core keeps one memfd per artifact while a connected worker uses it.
 *
 * Loop thread only, except loadcode_build (pure).
 */
#ifndef WF_LOADCODE_H
#define WF_LOADCODE_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

struct loop;
struct dbq;
struct wview;
struct wconns;
struct wconn;
struct artfetch;
struct loadcode;

struct loadcode *loadcode_new(struct loop *l, struct dbq *q, struct wview *v, struct wconns *wc,
                              struct artfetch *af);
/* The worker channels are going away (shutdown): answers still to come
 * from the database or the artifact thread are dropped. */
void loadcode_detach(struct loadcode *lc);
void loadcode_free(struct loadcode *lc);

/* Sends w its project's code (or why it cannot have it), once per socket. */
void loadcode_send(struct loadcode *lc, struct wconn *w);

/* The worker's hello: loads it when it has no code, else checks its claim
 * (now, or once loadcode_view_ready was called). May reset w. */
void loadcode_on_hello(struct loadcode *lc, struct wconn *w, const cJSON *hello);

/* The manager's hello was applied and the rows' code read back: claims
 * held until now are checked. */
void loadcode_view_ready(struct loadcode *lc);

/* w is going away: forget it, and close the memfds no connected worker
 * uses any more. */
void loadcode_gone(struct loadcode *lc, struct wconn *w);

/* The summary (JSON text) of what w was given or confirmed to hold, or NULL
 * (borrowed: valid until w goes). */
const char *loadcode_summary(struct loadcode *lc, const struct wconn *w);

/*
 * Older code for runs pinned to it (DESIGN §5, code versions): makes sure w
 * holds artifact sha beside its current code, by sending it
 * {"t":"artifact","sha256"} with the sealed memfd and then
 * {"t":"version","sha256"}. Returns 1 when both were sent now, 0 when the
 * memfd is being made (done(arg, id of w, sha, err) follows on the loop
 * thread: err NULL once sent, else why not), or -1 (out of memory, or w
 * was reset). The memfd stays cached while w holds it.
 */
typedef void (*loadcode_provided_fn)(void *arg, uint64_t wid, const char *sha, const char *err);
int loadcode_provide(struct loadcode *lc, struct wconn *w, const char *sha,
                     loadcode_provided_fn done, void *arg);

/* One active code row of a project. */
struct loadcode_row {
    const char *kind; /* "workflow" or "activity" */
    const char *name;
    const char *sha256; /* NULL: declared without code */
};

/*
 * Builds the load message for rows[0..n) (each distinct sha listed once in
 * "artifacts", labelled with the first name that uses it) and its summary
 * as JSON text in *summary (malloc'ed; caller frees). Returns the message
 * (caller deletes), or NULL when out of memory, with *summary NULL: never a
 * partial message.
 */
cJSON *loadcode_build(const struct loadcode_row *rows, size_t n, char **summary);

/* {"t":"load","error":err,"transient":true}; NULL when out of memory. */
cJSON *loadcode_error_message(const char *err);

#endif
