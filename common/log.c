/*
 * log.c: formats one event per line and writes it to stderr in one call.
 *
 * Invariants: no allocation (a fixed stack buffer; long messages are cut and
 * end with "..."), no locks (write(2) of one buffer is atomic enough for
 * lines under PIPE_BUF and never torn by our own threads), callable from any
 * thread and right after fork. Settings are plain globals written only
 * before threads start.
 */
#include "log.h"

#include "jsonutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static enum log_level log_threshold = LOG_LVL_INFO;
static int log_json;
static char log_role[16] = "wf-server";

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *role, enum log_level level, int json)
{
    log_threshold = level;
    log_json = json;
    log_set_role(role);
}

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(enum log_level level)
{
    return level <= log_threshold;
}

/* Appends s to buf[*pos..cap) escaped as a JSON string body; never overflows. */
static void append_json_escaped(char *buf, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c < 0x20) {
            *pos += (size_t)snprintf(buf + *pos, cap - *pos, "\\u%04x", c);
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

void log_generic(enum log_level level, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX];
    char ts[JU_ISO_LEN];
    va_list ap;
    int saved_errno = errno;
    size_t pos;
    int n;

    if (!log_enabled(level))
        return;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg, sizeof(msg), "(unformattable log message)");
    else if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);

    ju_format_iso(ju_wall_ms(), ts, sizeof(ts));

    if (log_json) {
        pos = (size_t)snprintf(
            line, sizeof(line),
            "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,\"msg\":\"", ts,
            level_names[level], log_role, (int)getpid());
        append_json_escaped(line, sizeof(line), &pos, msg);
        memcpy(line + pos, "\"}\n", 3); /* append_json_escaped leaves room */
        pos += 3;
    } else {
        pos = (size_t)snprintf(line, sizeof(line), "%s [%d] %s %s: %s\n", ts, (int)getpid(),
                               log_role, level_names[level], msg);
    }
    if (pos >= sizeof(line)) {
        pos = sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    /* One write per line; a short write to a full pipe is not retried. */
    if (write(STDERR_FILENO, line, pos) < 0)
        (void)0;
    errno = saved_errno;
}
