/*
 * manager.h: the manager role's state, shared by its modules (manager.c: the
 * event loop, signals and the core child; supervise.c: worker slots and their
 * state machine; spawn.c: fork and exec).
 *
 * Invariants: the manager is single-threaded and the only process that
 * forks; it never connects to the database and never loads plugin code. All
 * of its state lives in one struct mgr, touched only by the loop.
 */
#ifndef WF_MANAGER_H
#define WF_MANAGER_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "backoff.h"
#include "config.h"
#include "jsonutil.h"

/* What an epoll registration points at. */
enum mgr_watch_kind {
    MW_SIGNAL,  /* the signalfd */
    MW_CORE,    /* the control socket to core */
    MW_WORKER,  /* a worker's control socket */
    MW_DESCRIBE /* the output pipe of a plugin describer */
};

struct mgr_watch {
    enum mgr_watch_kind kind;
    void *ptr;       /* struct mgr_proc for MW_WORKER, struct mgr_describe for MW_DESCRIBE */
    int fd;          /* the watched descriptor */
    uint32_t events; /* what epoll watches it for */
};

struct chan;

enum proc_state {
    PROC_STARTING, /* exec'd, waiting for "ready" */
    PROC_RUNNING,  /* reported ready */
    PROC_DRAINING  /* SIGTERM sent, waiting for it to exit */
};

/* One live worker process. */
struct mgr_proc {
    struct mgr_watch watch;
    pid_t pid;
    int ctl_fd;       /* the control socket (owned by ctl), -1 once closed */
    struct chan *ctl; /* non-blocking channel on ctl_fd, NULL once closed */
    enum proc_state state;
    char project[WF_ID_MAX + 1];
    int64_t spawned_mono;
    int64_t spawned_wall;
    int64_t ready_mono; /* 0 until ready */
    int64_t deadline;   /* start timeout, or SIGKILL time while draining */
    int killed;         /* SIGKILL sent */
    int load_failed;    /* reported a load error: exits 1, no restart */
    int load_outage;    /* could not get its code (database down): exits 1, retried, no crash */
    char error[512];    /* the load error, if any */
    char reset[256];    /* why core asked for it to be killed, if it did */
    struct mgr_proc *next;
};

/* A request from core waiting for an outcome, and the reply code it gets
 * on success ("started", "started_fresh", "restarted", "stopped"). */
struct mgr_waiter {
    uint64_t id;
    const char *code;
};

/* A growable list of waiting requests. */
struct mgr_waiters {
    struct mgr_waiter *items;
    size_t n, cap;
};

enum slot_state {
    SLOT_STARTING, /* cur is starting */
    SLOT_RUNNING,  /* cur is running (maybe with a replacement starting) */
    SLOT_STOPPING, /* cur was told to stop */
    SLOT_BACKOFF,  /* crashed; no process until restart_at */
    SLOT_FAILED    /* breaker tripped or code failed to load; stays down */
};

/* A project this host keeps a worker for. */
struct mgr_slot {
    char project[WF_ID_MAX + 1];
    char worker_id[WF_ID_MAX + 72];
    enum slot_state state;
    struct mgr_proc *cur;  /* current process, or NULL */
    struct mgr_proc *repl; /* hot-restart replacement being started, or NULL */
    struct bo_state bo;
    int restarts;         /* respawns after crashes */
    int64_t restart_at;   /* SLOT_BACKOFF: when to respawn (monotonic) */
    int crash_restart;    /* SLOT_BACKOFF after a crash (not a scheduled start) */
    int64_t started_wall; /* spawn time of cur, or of the last process */
    int64_t last_spawn;   /* monotonic time of the last spawn (restart floor) */
    pid_t last_pid;
    char error[512];                    /* last crash or load error */
    struct mgr_waiters start_waiters;   /* start calls waiting for ready */
    struct mgr_waiters restart_waiters; /* restart calls waiting for repl */
    struct mgr_waiters stop_waiters;    /* stop calls waiting for exit */
};

struct mgr {
    const struct wf_config *cfg;
    int epfd;
    int sigfd;
    int listen_fd;
    int port; /* the port listen_fd is bound to (PORT, or the one picked for PORT=0) */
    char worker_prog[PATH_MAX];
    char *worker_env[24];        /* the environment of every worker (spawn adds its own) */
    char instance_dir[PATH_MAX]; /* <WF_RUNTIME_DIR>/<port> */
    uid_t worker_uid;            /* workers run as this user when the manager is root */
    gid_t worker_gid;
    int drop_privileges; /* the manager is root: workers switch to worker_uid */
    struct mgr_watch sig_watch;
    struct mgr_watch core_watch;

    pid_t core_pid;          /* 0 when not running */
    int core_fd;             /* -1 when not running (owned by core_ch) */
    struct chan *core_ch;    /* non-blocking channel on core_fd */
    int core_attached;       /* core said hello: it may receive workers */
    int core_started_once;   /* a core has said hello before (not the first) */
    int64_t core_spawned;    /* monotonic */
    int64_t core_restart_at; /* 0: none scheduled */
    struct bo_state core_bo;

    struct idmap slots;     /* struct mgr_slot by project */
    struct mgr_proc *procs; /* every live worker process */
    struct mgr_proc *dead;  /* reaped this iteration; freed at the next */

    struct mgr_describe *describes; /* plugin describers, running or queued */

    int64_t next_orphan_sweep; /* monotonic ms */

    int shutting_down;
    int64_t shutdown_kill_at; /* when to SIGKILL what is left */
    int exit_code;
};

/* manager.c */
int mgr_main(const struct wf_config *cfg);
/* Sends msg (not consumed) to core if one is attached; drops it otherwise. */
void mgr_core_send(struct mgr *m, const cJSON *msg, int pass_fd);
int mgr_watch_fd(struct mgr *m, int fd, struct mgr_watch *w) __attribute__((warn_unused_result));
/* Watches w's fd for EPOLLOUT too while want_out (a channel with a queue). */
void mgr_watch_out(struct mgr *m, struct mgr_watch *w, int want_out);
/* A new channel on fd (taken over; the manager's limits), or NULL (logged,
 * fd closed). */
struct chan *mgr_chan(int fd);

/* spawn.c */
/* Forks core: the child runs core_main() on ctl_fd and listen_fd and never
 * returns. Returns the pid, or -1 with errno set. */
pid_t spawn_core(struct mgr *m, int ctl_fd);
/* Forks and execs a worker for project with its control socket ctl_fd and
 * work socket work_fd as fds 3 and 4 and the manager's minimal environment
 * plus WF_SCRATCH_DIR and TMPDIR (its scratch directory, made if missing).
 * Returns the pid, or -1 with errno set. The caller keeps its descriptors. */
pid_t spawn_worker(struct mgr *m, const char *project, const char *worker_id, int ctl_fd,
                   int work_fd);
/* Execs `<worker program> describe <label> <manager pid>` with the plugin's
 * sealed memfd as fd 3 and the write end of its output pipe as fd 4.
 * Returns the pid, or -1 with errno set. The caller keeps its descriptors. */
pid_t spawn_describer(struct mgr *m, const char *label, int memfd, int out_fd);

/* supervise.c */
void sv_request(struct mgr *m, const char *op, uint64_t req, const char *project);
/* Core gave up on worker pid of project: SIGKILL it; reason becomes the
 * crash's description. */
void sv_kill(struct mgr *m, const char *project, pid_t pid, const char *reason);
/* Flushes a worker's control channel when its socket is writable. */
void sv_worker_writable(struct mgr *m, struct mgr_proc *p);
void sv_worker_message(struct mgr *m, struct mgr_proc *p);
int sv_reaped(struct mgr *m, pid_t pid, int wstatus);
int64_t sv_timers(struct mgr *m, int64_t now);
void sv_core_hello(struct mgr *m);
void sv_core_lost(struct mgr *m);
void sv_shutdown(struct mgr *m);
int sv_live_procs(const struct mgr *m);
/* 1 if pid is one of the worker processes the manager tracks. */
int sv_is_proc(struct mgr *m, pid_t pid);
void sv_kill_all(struct mgr *m);
void sv_free(struct mgr *m);

/* scratch.c: projects' scratch directories */

/* Empties or creates <WF_RUNTIME_DIR>/<port> (0711). Returns 0, or -1 logged. */
int scr_init(struct mgr *m, int port);
/* The project's private scratch directory (<instance_dir>/<project>, 0700,
 * owned by the user its workers run as), created if missing. Returns 0 with
 * the path in out, or -1 with errno set. */
int scr_project(struct mgr *m, const char *project, char *out, size_t len);
/* Removes the instance directory (shutdown, once no worker is left). */
void scr_cleanup(struct mgr *m);

/* describe.c: short-lived sandboxed describers of uploaded plugins */
struct mgr_describe;
/* Core asks for memfd (taken) to be described as label; the reply goes to
 * core as {"ev":"reply","req",…}. */
void dsc_request(struct mgr *m, uint64_t req, const char *label, int memfd);
/* Output is readable on a describer's pipe. */
void dsc_readable(struct mgr *m, struct mgr_describe *d);
/* A reaped pid that may be a describer's; returns 1 if it was. */
int dsc_reaped(struct mgr *m, pid_t pid, int wstatus);
/* Kills describers past their deadline, starts queued ones; returns the
 * next deadline (INT64_MAX: none). */
int64_t dsc_timers(struct mgr *m, int64_t now);
/* 1 if pid is a running describer. */
int dsc_is_describer(const struct mgr *m, pid_t pid);
/* Describers still running (shutdown waits for them). */
int dsc_live(const struct mgr *m);
/* Kills every describer (shutdown, second signal). */
void dsc_kill_all(struct mgr *m);
void dsc_free(struct mgr *m);

#endif
