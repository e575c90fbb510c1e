/*
 * follow.c: see follow.h.
 *
 * One libcurl transfer per connection of the stream; its write callback
 * parses the text/event-stream as it arrives (lines into events, an event
 * ends at a blank line), prints each event and, once a `run` event says
 * the run ended, stops the transfer. Buffers are capped: a line longer
 * than CTL_FOLLOW_LINE_MAX is a broken server, not an event. A transfer
 * that ends without the run's end (the server went away, the stream was
 * closed because we did not keep up, no byte for CTL_FOLLOW_IDLE_S while
 * the server sends a keep-alive every 15 s) is opened again, with the last
 * id, after a pause of a second; CTL_FOLLOW_RETRIES such failures in a row
 * without an event in between give up.
 */
#include "follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#define CTL_FOLLOW_LINE_MAX (1024u * 1024u)
#define CTL_FOLLOW_IDLE_S 45L
#define CTL_FOLLOW_RETRIES 10
#define CTL_FOLLOW_CONNECT_TIMEOUT_S 10L

/* The stream's state across its connections. */
struct follow {
    int json;        /* print each event's JSON */
    char last[160];  /* the last event id received */
    char *line;      /* the line being read */
    size_t len, cap; /* of line */
    char event[32];  /* the current event's name */
    char *data;      /* its data (malloc'ed) or NULL */
    char id[160];    /* its id */
    int ended;       /* 1 completed, 2 failed or cancelled */
    int events;      /* events received on this connection */
    long status;     /* this connection's HTTP status */
    char *err;       /* a refusal's body */
    size_t errlen;
    int broken; /* a line too long */
    CURL *h;    /* the transfer in progress */
};

/* Prints one event (readable or JSON) and notes the run's end. */
static void print_event(struct follow *f)
{
    cJSON *j = f->data != NULL ? cJSON_Parse(f->data) : NULL;
    const char *st = ctl_str(j, "status");

    if (f->json) {
        printf("%s\n", f->data != NULL ? f->data : "null");
    } else if (strcmp(f->event, "step") == 0) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
        const char *err = ctl_str(j, "error");
        printf("step %d %s %s %s%s%s\n", cJSON_IsNumber(seq) ? seq->valueint : -1,
               ctl_str(j, "kind") ? ctl_str(j, "kind") : "?",
               ctl_str(j, "name") ? ctl_str(j, "name") : "?", st != NULL ? st : "?",
               err != NULL ? ": " : "", err != NULL ? err : "");
    } else if (strcmp(f->event, "run") == 0) {
        cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "output");
        cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
        char *text = NULL;
        if (out != NULL && !cJSON_IsNull(out))
            text = cJSON_PrintUnformatted(out);
        else if (error != NULL && !cJSON_IsNull(error))
            text = cJSON_PrintUnformatted(error);
        printf("run %s%s%s\n", st != NULL ? st : "?", text != NULL ? " " : "",
               text != NULL ? text : "");
        free(text);
    } else if (strcmp(f->event, "retry") == 0) {
        printf("retried: the history follows again\n");
    }
    fflush(stdout);
    if (strcmp(f->event, "run") == 0 && st != NULL) {
        if (strcmp(st, "completed") == 0)
            f->ended = 1;
        else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)
            f->ended = 2;
    }
    cJSON_Delete(j);
}

/* One complete line of the stream (without its newline). */
static void on_line(struct follow *f, const char *line)
{
    if (line[0] == '\0') { /* the end of an event */
        if (f->event[0] != '\0') {
            if (f->id[0] != '\0')
                snprintf(f->last, sizeof(f->last), "%s", f->id);
            f->events++;
            print_event(f);
        }
        f->event[0] = f->id[0] = '\0';
        free(f->data);
        f->data = NULL;
        return;
    }
    if (strncmp(line, "event: ", 7) == 0)
        snprintf(f->event, sizeof(f->event), "%s", line + 7);
    else if (strncmp(line, "id: ", 4) == 0)
        snprintf(f->id, sizeof(f->id), "%s", line + 4);
    else if (strncmp(line, "data: ", 6) == 0 && f->data == NULL)
        f->data = strdup(line + 6);
    /* comments (":…"), retry: and anything else are skipped */
}

/* libcurl's write callback: the stream's bytes. Returns 0 (stops the
 * transfer) once the run ended or a line is too long. */
static size_t on_bytes(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct follow *f = userdata;
    size_t n = size * nmemb;

    if (f->status == 0)
        curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) { /* a refusal: keep its JSON body for the message */
        if (f->errlen + n > CTL_FOLLOW_LINE_MAX)
            return 0;
        char *e = realloc(f->err, f->errlen + n + 1);
        if (e == NULL)
            return 0;
        f->err = e;
        memcpy(f->err + f->errlen, ptr, n);
        f->errlen += n;
        f->err[f->errlen] = '\0';
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = ptr[i];
        if (ch == '\r')
            continue;
        if (ch == '\n') {
            if (f->line == NULL)
                on_line(f, "");
            else {
                f->line[f->len] = '\0';
                on_line(f, f->line);
            }
            f->len = 0;
            if (f->ended)
                return 0; /* the run ended: done */
            continue;
        }
        if (f->len + 2 > f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 1024;
            char *l;
            if (cap > CTL_FOLLOW_LINE_MAX) {
                f->broken = 1;
                return 0;
            }
            l = realloc(f->line, cap);
            if (l == NULL)
                return 0;
            f->line = l;
            f->cap = cap;
        }
        f->line[f->len++] = ch;
    }
    return n;
}

/*
 * One connection of the stream: GET path with the last id received, until
 * the run ends or the transfer does. Returns 0 when it ended the run's way
 * (or the server refused: f->status says), -1 when the transfer broke
 * (printed as a note on stderr).
 */
static int follow_once(const struct ctl_client *c, struct follow *f, const char *path)
{
    char url[2048], line[512], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *l = NULL, *n;
    CURLcode rc = CURLE_OK;
    CURL *h = curl_easy_init();

    if (h == NULL)
        return -1;
    f->h = h;
    f->status = 0;
    f->events = 0;
    f->len = 0;
    f->event[0] = f->id[0] = '\0';
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    l = curl_slist_append(l, "Accept: text/event-stream");
    if (l != NULL && f->last[0] != '\0') {
        snprintf(line, sizeof(line), "Last-Event-ID: %s", f->last);
        n = curl_slist_append(l, line);
        l = n != NULL ? n : l;
    }
    if (l != NULL && c->token != NULL && c->token[0] != '\0') {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
        n = curl_slist_append(l, line);
        l = n != NULL ? n : l;
    }
    /* Only this URL: no redirects, no proxy from the environment; no
     * overall timeout (a run may take hours) but at least a byte every
     * CTL_FOLLOW_IDLE_S (keep-alives come every 15 s). */
    rc |= curl_easy_setopt(h, CURLOPT_URL, url);
    rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(h, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CTL_FOLLOW_CONNECT_TIMEOUT_S);
    rc |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, CTL_FOLLOW_IDLE_S);
    rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, "wfctl/" WF_VERSION);
    rc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_bytes);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (f->status == 0)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
    curl_slist_free_all(l);
    curl_easy_cleanup(h);
    f->h = NULL;
    if (f->ended || (f->status != 0 && f->status != 200))
        return 0;
    if (f->broken) {
        ctl_error("could not read the event stream: a line longer than %u bytes",
                  CTL_FOLLOW_LINE_MAX);
        return 0;
    }
    fprintf(stderr, "wfctl: the event stream broke (%s); reconnecting\n",
            rc != CURLE_OK ? (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc))
                           : "closed by the server");
    return -1;
}

void ctl_events_usage(FILE *f)
{
    fputs("usage: wfctl events RUN [--output text|json]\n"
          "\n"
          "Follow run RUN live: its steps as they commit and its status changes,\n"
          "until it ends. A dropped connection is opened again where it stopped\n"
          "(Last-Event-ID), so no event is lost or printed twice.\n"
          "\n"
          "options:\n"
          "  --output json  each event's JSON on one line (also with --json)\n"
          "  --output text  one readable line per event (the default)\n"
          "\n"
          "exit status: 0 the run completed, 1 it failed or was cancelled (or\n"
          "the server refused), 2 the server could not be reached\n"
          "\n"
          "Global options (--url, --token, --json): see wfctl --help.\n",
          f);
}

int ctl_events_main(const struct ctl_client *c, int argc, char **argv)
{
    struct follow f;
    const char *run = NULL, *output = NULL;
    char path[512];
    int failures = 0, rc;

    memset(&f, 0, sizeof(f));
    for (int i = 1; i < argc; i++) {
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_events_usage(stdout);
            return CTL_EXIT_OK;
        }
        m = ctl_opt_value(argc, argv, &i, "--output", &output);
        if (m < 0)
            return CTL_EXIT_USAGE;
        if (m > 0)
            continue;
        if (argv[i][0] == '-' || run != NULL) {
            ctl_error("unexpected argument \"%s\" (see wfctl events --help)", argv[i]);
            return CTL_EXIT_USAGE;
        }
        run = argv[i];
    }
    if (run == NULL) {
        ctl_error("events needs a run id (see wfctl events --help)");
        return CTL_EXIT_USAGE;
    }
    if (output != NULL && strcmp(output, "json") != 0 && strcmp(output, "text") != 0) {
        ctl_error("--output must be text or json, not \"%s\"", output);
        return CTL_EXIT_USAGE;
    }
    f.json = c->json || (output != NULL && strcmp(output, "json") == 0);
    if (ctl_path(path, sizeof(path), "/executions/%s/events", run) < 0)
        return CTL_EXIT_USAGE;
    for (;;) {
        rc = follow_once(c, &f, path);
        if (rc == 0)
            break;
        failures = f.events > 0 ? 1 : failures + 1;
        if (failures >= CTL_FOLLOW_RETRIES) {
            ctl_error("could not follow run %s: the server at %s did not answer %d times", run,
                      c->url, CTL_FOLLOW_RETRIES);
            rc = CTL_EXIT_UNREACHABLE;
            goto out;
        }
        sleep(1);
    }
    if (f.status != 200 && !f.ended) {
        cJSON *j = f.err != NULL ? cJSON_Parse(f.err) : NULL;
        const char *e = ctl_str(j, "error");
        if (f.status == 0 || f.broken)
            rc = CTL_EXIT_UNREACHABLE;
        else
            rc = CTL_EXIT_REFUSED;
        if (f.status != 0)
            ctl_error("%s", e != NULL ? e : "the server refused the event stream");
        cJSON_Delete(j);
        goto out;
    }
    rc = f.ended == 1 ? CTL_EXIT_OK : f.ended == 2 ? CTL_EXIT_REFUSED : CTL_EXIT_UNREACHABLE;
out:
    free(f.line);
    free(f.data);
    free(f.err);
    return rc;
}
