/*
 * log.h: one-line-per-event logging for every role (manager, core, worker).
 *
 * Lines go to stderr with a single write(2) each, so lines of concurrent
 * threads and processes never interleave. Two formats: text for terminals,
 * JSON ({"ts","level","role","pid","msg"}) for containers. Messages follow
 * PostgreSQL's style: lower case, no trailing period, "could not <verb>
 * <object>: <detail>".
 */
#ifndef WF_LOG_H
#define WF_LOG_H

enum log_level {
    LOG_LVL_ERROR,   /* something failed and was not recovered here */
    LOG_LVL_WARNING, /* something failed and was recovered, or may fail */
    LOG_LVL_INFO,    /* lifecycle events: start, stop, crash, restart */
    LOG_LVL_DEBUG    /* per-request and per-message detail */
};

/* Sets the role name shown on each line ("manager", "core", "worker") and the
 * output format and threshold. Safe to call again after fork. */
void log_init(const char *role, enum log_level level, int json);

/* Changes only the role name (after fork, before the role starts). */
void log_set_role(const char *role);

/* Parses "error", "warning", "info" or "debug"; returns 0, or -1 if unknown. */
int log_parse_level(const char *s, enum log_level *out);

/* Returns 1 if a message at this level would be written. */
int log_enabled(enum log_level level);

void log_generic(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_generic(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_generic(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_generic(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_generic(LOG_LVL_DEBUG, __VA_ARGS__);                                               \
    } while (0)

#endif
