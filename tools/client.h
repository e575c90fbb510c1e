/*
 * client.h: the HTTP side of wfctl, one libcurl request per call.
 *
 * wfctl talks to exactly one server, the base URL given by --url (or $WF_URL):
 * redirects are not followed and proxies from the environment are ignored,
 * so a request never leaves for another host. Every failure is printed to
 * stderr here, once, in the form "wfctl: could not <verb> <object>: <detail>";
 * callers only map the return value to wfctl's exit status.
 */
#ifndef WF_TOOLS_CLIENT_H
#define WF_TOOLS_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* wfctl's exit statuses (documented in its --help). */
enum ctl_exit {
    CTL_EXIT_OK = 0,          /* done */
    CTL_EXIT_REFUSED = 1,     /* the server refused, or a local check failed */
    CTL_EXIT_UNREACHABLE = 2, /* could not reach the server */
    CTL_EXIT_USAGE = 100      /* bad command line */
};

/* The connection settings shared by every command. Strings are borrowed
 * (argv or the environment) and outlive the client. */
struct ctl_client {
    const char *url;   /* base URL without a trailing slash */
    const char *token; /* bearer token or NULL */
    int json;          /* 1: print raw JSON replies */
};

/* One reply. body is NUL-terminated; json is the parsed body or NULL. */
struct ctl_reply {
    long status; /* HTTP status */
    char *body;
    size_t len;
    cJSON *json;
};

/*
 * Sends `method path` to the server with an optional body (len bytes of
 * content_type; body NULL: none). Returns CTL_EXIT_OK with *r filled (free it
 * with ctl_reply_free) whatever the HTTP status, or CTL_EXIT_UNREACHABLE
 * after printing why (*r is then empty and needs no free).
 */
int ctl_request(const struct ctl_client *c, const char *method, const char *path, const void *body,
                size_t len, const char *content_type, struct ctl_reply *r)
    __attribute__((warn_unused_result));

/*
 * As ctl_request with a JSON body (borrowed; may be NULL) serialised here.
 */
int ctl_request_json(const struct ctl_client *c, const char *method, const char *path,
                     const cJSON *body, struct ctl_reply *r) __attribute__((warn_unused_result));

/*
 * ctl_request_json with the common reply handling: with --json the raw
 * body is printed, then the verdict of ctl_reply_check. On CTL_EXIT_OK the
 * caller owns *r (a 2xx reply); otherwise *r needs no free.
 */
int ctl_call(const struct ctl_client *c, const char *method, const char *path, const cJSON *body,
             struct ctl_reply *r) __attribute__((warn_unused_result));

/* Frees what a reply holds and empties it; safe on an empty reply. */
void ctl_reply_free(struct ctl_reply *r);

/*
 * The verdict on a reply: CTL_EXIT_OK for a 2xx status, else prints the
 * server's "error" text (or the HTTP status when the body has none) and
 * returns CTL_EXIT_REFUSED.
 */
int ctl_reply_check(const struct ctl_reply *r);

/* With --json, prints the raw body and a newline to stdout. */
void ctl_print_raw(const struct ctl_client *c, const struct ctl_reply *r);

/*
 * Builds "/<a>/<b>…" into buf from literal segments and user-supplied ones,
 * percent-encoding the latter: fmt is a printf-like string where each "%s"
 * is replaced by the next argument, escaped. Returns 0, or -1 when buf is
 * too small or out of memory (printed).
 */
int ctl_path(char *buf, size_t size, const char *fmt, ...);

/* The string member key of obj, or NULL. */
const char *ctl_str(const cJSON *obj, const char *key);

/*
 * Command-line helper: when argv[*i] is option `name` ("--name VALUE" or
 * "--name=VALUE"), stores VALUE (borrowed from argv) in *value, advances *i
 * past it and returns 1; returns 0 when argv[*i] is something else, and -1
 * (printed) when the value is missing.
 */
int ctl_opt_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Prints "wfctl: <message>" and a newline to stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* WF_TOOLS_CLIENT_H */
