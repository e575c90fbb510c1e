/*
 * test_torture.c: allocation-failure torture (STYLE §20d, after curl's
 * torture tests). Each scenario runs once to count its allocations, then
 * once for every allocation n with the n-th one failing: it must neither
 * crash nor leak (run under AddressSanitizer in CI), and must report the
 * failure its contract promises rather than half a result.
 *
 * Failures are injected in two places: cJSON's allocator (cJSON_InitHooks)
 * and our own modules' malloc/calloc/realloc (linked with -Wl,--wrap).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "jsonutil.h"
#include "loadcode.h"
#include "loader.h"
#include "log.h"
#include "msg.h"
#include "testhelp.h"

static long alloc_count;  /* allocations seen in this run */
static long fail_at = -1; /* the allocation to fail, or -1 */

static int should_fail(void)
{
    return alloc_count++ == fail_at;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b)
{
    return should_fail() ? NULL : __real_calloc(a, b);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void *json_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

static const char *item_key(const void *it)
{
    return (const char *)it;
}

/* Each scenario returns 1 if it completed fully, 0 if it reported an
 * allocation failure as its contract says, -1 on a contract violation. */

static int scenario_idmap(void)
{
    static char keys[40][8];
    struct idmap m = {NULL, 0, 0, item_key};
    int ok = 1;

    for (int i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", (i * 7) % 40);
        if (idmap_put(&m, keys[i]) < 0) {
            ok = 0; /* refused, map unchanged: earlier keys still there */
            if (i > 0 && idmap_get(&m, keys[0]) == NULL)
                ok = -1;
            break;
        }
    }
    idmap_free(&m);
    return ok;
}

static int scenario_msg(void)
{
    int sv[2];
    cJSON *o, *got = NULL;
    int r, ok;

    if (msg_socketpair(sv) < 0)
        return 0;
    o = cJSON_Parse("{\"t\":\"load\",\"workflows\":[\"a\",\"b\"],"
                    "\"artifacts\":[{\"label\":\"x\",\"path\":\"/p\",\"sha256\":\"00\"}]}");
    if (o == NULL) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    r = msg_send(sv[0], o, -1);
    cJSON_Delete(o);
    if (r < 0) {
        ok = errno == ENOMEM ? 0 : -1;
    } else {
        r = msg_recv(sv[1], &got, NULL);
        /* A parse that ran out of memory is reported as a bad message. */
        ok = r == 1 ? 1 : (r < 0 && errno == EBADMSG ? 0 : -1);
        if (r == 1 && !cJSON_IsArray(cJSON_GetObjectItem(got, "workflows")))
            ok = -1;
        cJSON_Delete(got);
    }
    close(sv[0]);
    close(sv[1]);
    return ok;
}

/* {"t":"x","s":"<len filler bytes>"}, or NULL when out of memory. */
static cJSON *filler_msg(size_t len)
{
    cJSON *o;
    char *s = __real_malloc(len + 1);

    if (s == NULL)
        return NULL;
    memset(s, 'f', len);
    s[len] = '\0';
    o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "t", "x") == NULL ||
        cJSON_AddStringToObject(o, "s", s) == NULL) {
        cJSON_Delete(o);
        o = NULL;
    }
    free(s);
    return o;
}

/* msg_encode then msg_decode of one inline and one memfd message. */
static int scenario_codec(void)
{
    static const size_t sizes[] = {100, MSG_INLINE_MAX + 100};
    int fds_before = count_fds();
    int ok = 1;

    for (size_t i = 0; i < 2 && ok == 1; i++) {
        cJSON *o = filler_msg(sizes[i]), *got = NULL;
        struct msg_rec rec;
        int fd;

        if (o == NULL)
            return 0;
        if (msg_encode(o, 0, &rec) < 0) {
            ok = errno == ENOMEM && rec.buf == NULL && rec.memfd < 0 ? 0 : -1;
            cJSON_Delete(o);
            break;
        }
        cJSON_Delete(o);
        fd = rec.memfd >= 0 ? fcntl(rec.memfd, F_DUPFD_CLOEXEC, 0) : -1;
        if (msg_decode((const char *)rec.buf, rec.len, &fd, fd >= 0 ? 1 : 0, 0, &got, NULL) < 0)
            ok = errno == EBADMSG ? 0 : -1; /* the parse ran out of memory */
        else if (ju_str(got, "s") == NULL || strlen(ju_str(got, "s")) != sizes[i])
            ok = -1;
        cJSON_Delete(got);
        msg_rec_free(&rec);
    }
    if (count_fds() != fds_before)
        ok = -1;
    return ok;
}

/* chan_send on an empty queue (written at once), then onto a full socket
 * (queued, one with a descriptor): a failed send queues nothing. */
static int scenario_chan(void)
{
    int fds_before = count_fds();
    int sv[2], pp[2], ok = 1;
    size_t queued = 0;
    struct chan *ch;
    char junk[MSG_HDR_LEN] = "WF";

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe(pp) < 0)
        return -1;
    ch = chan_new(sv[0], NULL);
    if (ch == NULL) {
        ok = errno == ENOMEM ? 0 : -1;
        close(sv[0]);
        goto out;
    }
    for (int i = 0; i < 3 && ok == 1; i++) {
        cJSON *o = filler_msg(i == 1 ? MSG_INLINE_MAX + 10 : 50);

        if (o == NULL) {
            ok = 0;
            break;
        }
        if (i == 1) {
            /* Fill the socket with raw records (no allocation here). */
            while (send(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
                ;
        }
        if (chan_send(ch, o, i == 2 ? pp[1] : -1) < 0) {
            ok = errno == ENOMEM && chan_queued_msgs(ch) == queued ? 0 : -1;
        } else {
            queued += i > 0;
            if (chan_queued_msgs(ch) != queued)
                ok = -1;
        }
        cJSON_Delete(o);
    }
    chan_free(ch);
out:
    close(sv[1]);
    close(pp[0]);
    close(pp[1]);
    if (count_fds() != fds_before)
        ok = -1;
    return ok;
}

static int scenario_loader(void)
{
    struct plg_source src = {"good", WF_TEST_PLUGIN_DIR "/good.so"};
    char err[256] = "";
    struct plg_registry *reg = plg_load(&src, 1, err, sizeof(err));
    cJSON *desc;

    if (reg == NULL)
        return strstr(err, "out of memory") != NULL || err[0] != '\0' ? 0 : -1;
    desc = cJSON_CreateObject();
    if (desc != NULL)
        plg_describe(reg, desc);
    cJSON_Delete(desc);
    plg_unload(reg);
    return 1;
}

/* The load message a worker gets: complete, or NULL with no summary
 * (a partial message would load part of the project's code silently). */
static const struct loadcode_row load_rows[] = {
    {"workflow", "order-flow", "aa"},
    {"activity", "charge", "aa"},
    {"activity", "notify", "bb"},
    {"activity", "planned", NULL},
};
static cJSON *load_reference;

static int scenario_loadcode(void)
{
    static char sentinel;
    char *summary = &sentinel; /* must be NULL after a failure */
    cJSON *m = loadcode_build(load_rows, 4, &summary);
    int ok;

    if (m == NULL)
        return summary == NULL ? 0 : -1;
    ok = summary != NULL && cJSON_Compare(m, load_reference, 1) ? 1 : -1;
    cJSON_Delete(m);
    free(summary);
    return ok;
}

static void torture(const char *name, int (*fn)(void))
{
    long total;
    int completed = 0, reported = 0;

    alloc_count = 0;
    fail_at = -1;
    CHECK_INT(fn(), 1);
    total = alloc_count;
    for (long n = 0; n < total; n++) {
        int r;
        alloc_count = 0;
        fail_at = n;
        r = fn();
        fail_at = -1;
        if (r < 0)
            fprintf(stderr, "%s: contract broken when allocation %ld failed\n", name, n);
        CHECK(r >= 0);
        completed += r == 1;
        reported += r == 0;
    }
    printf("%s: %ld allocations, %d failures reported, %d runs completed anyway\n", name, total,
           reported, completed);
    CHECK(total > 0);
}

int main(void)
{
    cJSON_Hooks hooks = {json_malloc, free};

    log_init("test", LOG_LVL_ERROR + 0, 0);
    cJSON_InitHooks(&hooks);
    torture("idmap", scenario_idmap);
    torture("msg", scenario_msg);
    torture("codec", scenario_codec);
    torture("chan", scenario_chan);
    torture("loader", scenario_loader);
    {
        char *summary = NULL;
        load_reference = loadcode_build(load_rows, 4, &summary);
        free(summary);
        CHECK(load_reference != NULL);
        torture("loadcode", scenario_loadcode);
        cJSON_Delete(load_reference);
    }
    cJSON_InitHooks(NULL);
    TEST_REPORT("test_torture");
}
