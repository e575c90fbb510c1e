/*
 * manager.c: the manager role: the event loop, signals, the listening
 * socket and the core child.
 *
 * The manager is single-threaded (epoll + signalfd; no handler does work),
 * the only process that forks, and holds no database connection. It owns the
 * listening socket and hands it to every core it forks, so the port stays
 * open (connections queue in the backlog) while a crashed core restarts.
 *
 * Shutdown (SIGTERM/SIGINT): every worker is drained (SIGTERM, then SIGKILL
 * after WF_DRAIN_TIMEOUT_MS), core records each exit, then core is told to
 * stop, and the manager exits 0. A second signal kills what is left at once.
 *
 * Under a service manager (systemd's Type=notify), the manager is the
 * unit's main process and speaks for the service (sdnotify.h): READY=1 when
 * core reports itself ready (what GET /health/ready answers 200 for), and
 * STOPPING=1 when a shutdown begins. Core knows readiness; the manager
 * alone sends, so the unit can believe its main process only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "exitcodes.h"
#include "log.h"
#include "manager.h"
#include "msg.h"
#include "sdnotify.h"

#define CORE_STOP_TIMEOUT_MS 10000

int mgr_watch_fd(struct mgr *m, int fd, struct mgr_watch *w)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    w->fd = fd;
    w->events = EPOLLIN;
    return epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void mgr_watch_out(struct mgr *m, struct mgr_watch *w, int want_out)
{
    uint32_t events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    struct epoll_event ev;

    if (w->events == events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = w;
    if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
        w->events = events;
}

struct chan *mgr_chan(int fd)
{
    struct chan *ch = chan_new(fd, NULL);

    if (ch == NULL) {
        log_error("could not set up a channel: %s", strerror(errno));
        close(fd);
    }
    return ch;
}

/* Core is gone or hung: forget its socket and tell the supervisor. */
static void drop_core(struct mgr *m);

void mgr_core_send(struct mgr *m, const cJSON *msg, int pass_fd)
{
    if (m->core_ch == NULL || !m->core_attached)
        return;
    if (chan_send(m->core_ch, msg, pass_fd) < 0) {
        int e = errno;
        if (e == ENOBUFS && m->core_pid > 0) {
            /* Core's loop never stops reading for long: it is hung. */
            log_error("core stopped reading its control socket; killing it (pid %d)",
                      (int)m->core_pid);
            kill(m->core_pid, SIGKILL);
            drop_core(m);
        } else {
            log_warning("could not send message to core: %s", strerror(e));
        }
        return;
    }
    mgr_watch_out(m, &m->core_watch, chan_wants_write(m->core_ch));
}

/* Lets the manager hold one socket per worker for thousands of workers. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warning("could not raise the open file limit: %s", strerror(errno));
    }
}

/* Appends "name=value" to the worker environment (static storage). */
static void worker_env_add(struct mgr *m, int *n, const char *name, const char *value)
{
    static char bufs[20][2100];
    static int used;

    if (used >= 20 || *n + 1 >= (int)(sizeof(m->worker_env) / sizeof(m->worker_env[0])))
        return;
    snprintf(bufs[used], sizeof(bufs[used]), "%s=%s", name, value);
    m->worker_env[(*n)++] = bufs[used++];
    m->worker_env[*n] = NULL;
}

/*
 * The environment a worker is exec'd with: nothing secret, only what
 * logging and the sanitizers (in test builds) read, and its sandbox's
 * settings (worker/sandbox.c), validated by config_load. spawn.c adds the
 * worker's own scratch directory, resolve_worker_user its uid and gid.
 */
static void build_worker_env(struct mgr *m)
{
    static const char *const pass[] = {"LOG_LEVEL",     "LOG_FORMAT",   "ASAN_OPTIONS",
                                       "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ"};
    static char path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
    const struct wf_config *cfg = m->cfg;
    char num[32];
    int n = 0;

    m->worker_env[n++] = path;
    m->worker_env[n] = NULL;
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = getenv(pass[i]);
        if (v != NULL)
            worker_env_add(m, &n, pass[i], v);
    }
    if (getenv("LOG_FORMAT") == NULL) /* keep the manager's choice for a tty */
        worker_env_add(m, &n, "LOG_FORMAT", cfg->log_json ? "json" : "text");
    /* Core and workers must agree on the largest message. */
    snprintf(num, sizeof(num), "%ld", cfg->max_message_bytes);
    worker_env_add(m, &n, "WF_MAX_MESSAGE_BYTES", num);
    if (cfg->worker_max_as_mb > 0) {
        snprintf(num, sizeof(num), "%ld", cfg->worker_max_as_mb);
        worker_env_add(m, &n, "WF_WORKER_MAX_AS_MB", num);
    }
    snprintf(num, sizeof(num), "%d", cfg->max_runs);
    worker_env_add(m, &n, "MAX_CONCURRENT_WORKFLOW_EXECUTIONS", num);
    snprintf(num, sizeof(num), "%d", cfg->max_activities);
    worker_env_add(m, &n, "MAX_CONCURRENT_ACTIVITY_EXECUTIONS", num);
    snprintf(num, sizeof(num), "%ld", cfg->worker_max_files);
    worker_env_add(m, &n, "WF_WORKER_MAX_FILES", num);
    if (cfg->worker_max_procs > 0) {
        snprintf(num, sizeof(num), "%ld", cfg->worker_max_procs);
        worker_env_add(m, &n, "WF_WORKER_MAX_PROCS", num);
    }
    if (cfg->sandbox_rw_paths[0] != '\0')
        worker_env_add(m, &n, "WF_SANDBOX_RW_PATHS", cfg->sandbox_rw_paths);
    if (cfg->sandbox_ro_paths[0] != '\0')
        worker_env_add(m, &n, "WF_SANDBOX_RO_PATHS", cfg->sandbox_ro_paths);
    if (cfg->sandbox_disable[0] != '\0') {
        log_warning("WF_SANDBOX_DISABLE=%s: workers run without %s; project code is less "
                    "contained (a setting for diagnosis only)",
                    cfg->sandbox_disable, cfg->sandbox_disable);
        worker_env_add(m, &n, "WF_SANDBOX_DISABLE", cfg->sandbox_disable);
    }
}

static int open_listener(struct mgr *m)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_error("could not create listening socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)m->cfg->port);
    inet_pton(AF_INET, m->cfg->listen_addr, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        log_error("could not bind to %s:%d: %s", m->cfg->listen_addr, m->cfg->port,
                  strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        log_error("could not listen on %s:%d: %s", m->cfg->listen_addr, m->cfg->port,
                  strerror(errno));
        close(fd);
        return -1;
    }
    m->listen_fd = fd;
    log_info("listening on port %d (address %s)", ntohs(sa.sin_port), m->cfg->listen_addr);
    return ntohs(sa.sin_port);
}

/*
 * Who workers run as. A root manager runs them as WF_WORKER_USER (default
 * wf-worker; when that default user does not exist, nobody, with a
 * warning); never as root. Otherwise they keep the server's own user, and
 * the sandbox and non-dumpable processes keep them from the server's
 * secrets. Returns 0, or -1 logged.
 */
static int resolve_worker_user(struct mgr *m)
{
    char uid_env[24], gid_env[24];
    const char *name = m->cfg->worker_user;
    int n;
    const char *set = getenv("WF_WORKER_USER");
    struct passwd *pw;

    m->worker_gid = (gid_t)-1;
    if (geteuid() != 0) {
        log_info("workers run as this server's user (uid %u); run it as root to give them "
                 "their own (WF_WORKER_USER)",
                 (unsigned)geteuid());
        return 0;
    }
    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL && (set == NULL || *set == '\0')) {
        log_warning("the worker user \"%s\" does not exist; workers run as \"nobody\" "
                    "(create a dedicated system user, or set WF_WORKER_USER)",
                    name);
        name = "nobody";
        pw = getpwnam(name);
    }
    if (pw == NULL) {
        log_error("the worker user \"%s\" does not exist (WF_WORKER_USER)", name);
        return -1;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        log_error("the worker user \"%s\" is root or in group root; workers never run so", name);
        return -1;
    }
    m->worker_uid = pw->pw_uid;
    m->worker_gid = pw->pw_gid;
    m->drop_privileges = 1;
    snprintf(uid_env, sizeof(uid_env), "%u", (unsigned)pw->pw_uid);
    snprintf(gid_env, sizeof(gid_env), "%u", (unsigned)pw->pw_gid);
    for (n = 0; m->worker_env[n] != NULL; n++)
        ;
    worker_env_add(m, &n, "WF_WORKER_UID", uid_env);
    worker_env_add(m, &n, "WF_WORKER_GID", gid_env);
    log_info("workers run as user \"%s\" (uid %u, gid %u)", name, (unsigned)pw->pw_uid,
             (unsigned)pw->pw_gid);
    return 0;
}

/* Forks a new core; on failure schedules another try in 60 s (s6). */
static void start_core(struct mgr *m)
{
    int sv[2];
    pid_t pid;

    m->core_restart_at = 0;
    if (msg_socketpair(sv) < 0) {
        log_error("could not create core socket: %s", strerror(errno));
        m->core_restart_at = ju_mono_ms() + 60000;
        return;
    }
    pid = spawn_core(m, sv[1]);
    close(sv[1]);
    if (pid < 0) {
        log_error("could not fork core: %s", strerror(errno));
        close(sv[0]);
        m->core_restart_at = ju_mono_ms() + 60000;
        return;
    }
    m->core_pid = pid;
    m->core_ch = mgr_chan(sv[0]);
    m->core_fd = m->core_ch != NULL ? sv[0] : -1;
    m->core_attached = 0;
    m->core_spawned = ju_mono_ms();
    if (m->core_fd >= 0 && mgr_watch_fd(m, m->core_fd, &m->core_watch) < 0)
        log_error("could not watch core socket: %s", strerror(errno));
    log_info("started core (pid %d)", (int)pid);
}

static void drop_core(struct mgr *m)
{
    if (m->core_ch != NULL) {
        chan_free(m->core_ch); /* closes the socket: also removes it from epoll */
        m->core_ch = NULL;
        m->core_fd = -1;
    }
    m->core_attached = 0;
    sv_core_lost(m);
}

static void core_exited(struct mgr *m, int wstatus)
{
    char desc[128];
    int64_t now = ju_mono_ms();
    int64_t at;
    m->core_pid = 0;
    (void)bo_classify(wstatus, desc, sizeof(desc));
    drop_core(m);
    if (m->shutting_down) {
        log_info("core %s", desc);
        return;
    }
    if (WIFEXITED(wstatus) &&
        (WEXITSTATUS(wstatus) == WF_EXIT_USAGE || WEXITSTATUS(wstatus) == WF_EXIT_HOST_TAKEN)) {
        log_error("core %s (%s); shutting down", desc,
                  WEXITSTATUS(wstatus) == WF_EXIT_USAGE ? "invalid configuration"
                                                        : "another server has this host id");
        sdn_send("STOPPING=1\nSTATUS=stopping: core could not run");
        m->exit_code = WEXITSTATUS(wstatus);
        sv_shutdown(m);
        m->shutting_down = 1;
        return;
    }
    /* A core that ran for a minute is healthy: the spawn time doubles as its
     * ready time for the backoff reset. */
    if (bo_on_crash(&m->core_bo, now, m->core_spawned, m->core_spawned, &at)) {
        /* Core is never given up on; keep retrying at the maximum backoff. */
        at = now + BO_MAX_MS;
        bo_reset(&m->core_bo);
        m->core_bo.backoff_ms = BO_MAX_MS;
    }
    m->core_restart_at = at;
    log_error("core %s; restarting in %lld ms", desc, (long long)(at - now));
    sdn_send("STATUS=core exited; restarting it");
}

/* Core says the service is ready (database reachable, migrations applied,
 * HTTP serving): tell the service manager. Again after a core restart:
 * READY=1 once ready is harmless, and the status line is current. */
static void core_ready(struct mgr *m)
{
    char state[96];

    snprintf(state, sizeof(state), "READY=1\nSTATUS=ready: serving on port %d", m->port);
    sdn_send(state);
    log_info("core reports the service ready");
}

/* Core's messages: at most a budget per readiness event (level-triggered
 * epoll brings the rest). */
static void process_core_message(struct mgr *m)
{
    for (int i = 0; i < 256 && m->core_ch != NULL; i++) {
        cJSON *msg = NULL;
        int fd = -1;
        int r = chan_recv(m->core_ch, &msg, &fd);
        const char *op;
        int64_t req = 0, pid = 0;

        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && (errno == EBADMSG || errno == EMSGSIZE)) {
            log_warning("ignoring a malformed message from core");
            continue;
        }
        if (r <= 0) {
            if (r < 0)
                log_warning("could not read from core: %s", strerror(errno));
            /* EOF: core is exiting; the reaper handles the rest. */
            drop_core(m);
            return;
        }
        op = ju_str(msg, "op");
        if (op != NULL && strcmp(op, "hello") == 0) {
            m->core_attached = 1;
            sv_core_hello(m);
            m->core_started_once = 1;
        } else if (op != NULL && strcmp(op, "ready") == 0 && m->core_attached) {
            if (!m->shutting_down)
                core_ready(m);
        } else if (op != NULL && strcmp(op, "describe") == 0 && ju_int(msg, "req", &req) == 0 &&
                   fd >= 0) {
            dsc_request(m, (uint64_t)req,
                        ju_str(msg, "label") != NULL ? ju_str(msg, "label") : "upload", fd);
            fd = -1;
        } else if (op != NULL && strcmp(op, "kill") == 0 && ju_str(msg, "project") != NULL &&
                   ju_int(msg, "pid", &pid) == 0) {
            sv_kill(m, ju_str(msg, "project"), (pid_t)pid,
                    ju_str(msg, "reason") != NULL ? ju_str(msg, "reason") : "no reason given");
        } else if (op != NULL && ju_int(msg, "req", &req) == 0 && ju_str(msg, "project") != NULL) {
            sv_request(m, op, (uint64_t)req, ju_str(msg, "project"));
        } else {
            log_warning("ignoring malformed message from core");
        }
        if (fd >= 0)
            close(fd);
        cJSON_Delete(msg);
    }
}

static void core_writable(struct mgr *m)
{
    if (m->core_ch == NULL)
        return;
    if (chan_flush(m->core_ch, ju_mono_ms()) < 0) {
        log_warning("could not write to core: %s", strerror(errno));
        drop_core(m);
        return;
    }
    mgr_watch_out(m, &m->core_watch, chan_wants_write(m->core_ch));
}

/*
 * pid's state letter and name from /proc/<pid>/stat. Returns 0, or -1 when
 * it is gone. The name may hold anything, so the state is found from the
 * name's closing parenthesis.
 */
static int proc_stat(long pid, char *state, long *ppid, char *comm, size_t len)
{
    char path[64], buf[512], *lp, *rp;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    lp = strchr(buf, '(');
    rp = strrchr(buf, ')');
    if (lp == NULL || rp == NULL || rp < lp || sscanf(rp + 1, " %c %ld", state, ppid) != 2)
        return -1;
    *rp = '\0';
    snprintf(comm, len, "%s", lp + 1);
    return 0;
}

/* Kills child pid if it is an orphan: not core, a worker or a describer,
 * and not already dead (a zombie waiting to be reaped). */
static void kill_if_orphan(struct mgr *m, long pid)
{
    char comm[64], state;
    long ppid;

    if ((pid_t)pid == m->core_pid || sv_is_proc(m, (pid_t)pid) || dsc_is_describer(m, (pid_t)pid))
        return;
    if (proc_stat(pid, &state, &ppid, comm, sizeof(comm)) < 0 || ppid != (long)getpid() ||
        state == 'Z')
        return;
    log_warning("killing orphan process %ld (%s) left behind by project code", pid, comm);
    kill((pid_t)-pid, SIGKILL); /* its group, if it leads one */
    kill((pid_t)pid, SIGKILL);
}

/*
 * The manager is a child subreaper: a process a plugin forked and left
 * behind (its worker gone, or a child that called setsid and outlived the
 * process that forked it) becomes the manager's child. Anything among its
 * children that it does not track (core, workers, describers) is such an
 * orphan, and is killed: nothing a plugin starts outlives its worker.
 * A child's pid cannot be reused before the manager reaps it, so a pid
 * listed here is that child's until then.
 *
 * The children come from /proc/self/task/<pid>/children, one read however
 * many workers run (the manager is single-threaded); a kernel without it
 * (CONFIG_PROC_CHILDREN) gets a scan of /proc instead.
 */
static void kill_orphans(struct mgr *m)
{
    char path[64], buf[65536];
    struct dirent *de;
    ssize_t n;
    DIR *d;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        size_t used = 0;
        while (used < sizeof(buf) - 1 && (n = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0)
            used += (size_t)n;
        close(fd);
        buf[used] = '\0';
        /* Past 64 KiB (some 9,000 children) the rest waits for the next
         * sweep; a pid cut in two there is dropped. */
        if (used == sizeof(buf) - 1 && strrchr(buf, ' ') != NULL)
            *strrchr(buf, ' ') = '\0';
        for (char *p = buf, *end; *p != '\0'; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0 && (*end == ' ' || *end == '\n' || *end == '\0'))
                kill_if_orphan(m, pid);
        }
        return;
    }
    d = opendir("/proc");
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        long pid;
        if (config_parse_long(de->d_name, 1, INT32_MAX, &pid) == 0)
            kill_if_orphan(m, pid);
    }
    closedir(d);
}

/* Reaps every exited child (STYLE §12: one loop, WNOHANG), then kills the
 * orphans the exits left. */
static void reap_children(struct mgr *m)
{
    pid_t pid;
    int wstatus;
    int reaped = 0;

    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
        reaped++;
        if (pid == m->core_pid)
            core_exited(m, wstatus);
        else if (!sv_reaped(m, pid, wstatus) && !dsc_reaped(m, pid, wstatus)) {
            char desc[128];
            bo_classify(wstatus, desc, sizeof(desc));
            log_info("reaped orphan process %d %s", (int)pid, desc);
        }
    }
    if (reaped > 0)
        kill_orphans(m);
}

static void begin_shutdown(struct mgr *m, const char *why)
{
    if (m->shutting_down) {
        log_warning("received %s again; killing every child now", why);
        sv_kill_all(m);
        dsc_kill_all(m);
        if (m->core_pid > 0)
            kill(m->core_pid, SIGKILL);
        return;
    }
    log_info("received %s; shutting down", why);
    /* First, so the service manager stops routing to us while we drain. */
    sdn_send("STOPPING=1\nSTATUS=stopping: draining workers");
    m->shutting_down = 1;
    sv_shutdown(m);
}

static void process_signals(struct mgr *m)
{
    struct signalfd_siginfo si;

    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            reap_children(m);
            break;
        case SIGTERM:
            begin_shutdown(m, "SIGTERM");
            break;
        case SIGINT:
            begin_shutdown(m, "SIGINT");
            break;
        default:
            break;
        }
    }
}

/*
 * Shutdown progress: once no worker is left, stop core; once core is gone,
 * the loop ends. Returns 1 when the manager may exit.
 */
static int shutdown_step(struct mgr *m, int64_t now)
{
    if (sv_live_procs(m) > 0 || dsc_live(m) > 0)
        return 0;
    if (m->core_pid > 0) {
        if (m->shutdown_kill_at == 0) {
            log_info("all workers stopped; stopping core");
            kill(m->core_pid, SIGTERM);
            m->shutdown_kill_at = now + CORE_STOP_TIMEOUT_MS;
        } else if (now >= m->shutdown_kill_at) {
            log_warning("core did not stop within %d ms; sending SIGKILL", CORE_STOP_TIMEOUT_MS);
            kill(m->core_pid, SIGKILL);
            m->shutdown_kill_at = now + 60000;
        }
        return 0;
    }
    return 1;
}

static int setup(struct mgr *m)
{
    sigset_t mask;
    ssize_t n;
    int port;

    signal(SIGPIPE, SIG_IGN);
    /* Before any child exists: NOTIFY_SOCKET leaves the environment here. */
    if (sdn_init())
        log_debug("will notify the service manager of readiness (NOTIFY_SOCKET)");
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    m->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (m->sigfd < 0 || m->epfd < 0) {
        log_error("could not create signalfd or epoll: %s", strerror(errno));
        return -1;
    }
    raise_fd_limit();
    /* Orphans of plugin processes come back to us (kill_orphans). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warning("could not become a child subreaper: %s; processes a plugin leaves "
                    "behind may outlive their worker",
                    strerror(errno));
    if (m->cfg->worker_program[0] != '\0') {
        snprintf(m->worker_prog, sizeof(m->worker_prog), "%s", m->cfg->worker_program);
    } else {
        char self[PATH_MAX];
        char *slash;
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            log_error("could not find own executable: %s", strerror(errno));
            return -1;
        }
        self[n] = '\0';
        /* wf-worker beside us if it is there, else this binary's worker mode. */
        snprintf(m->worker_prog, sizeof(m->worker_prog), "%s", self);
        slash = strrchr(m->worker_prog, '/');
        if (slash != NULL &&
            (size_t)(slash - m->worker_prog) + sizeof("/wf-worker") <= sizeof(m->worker_prog)) {
            memcpy(slash, "/wf-worker", sizeof("/wf-worker"));
            if (access(m->worker_prog, X_OK) < 0)
                snprintf(m->worker_prog, sizeof(m->worker_prog), "%s", self);
        }
    }
    log_info("worker program: %s", m->worker_prog);
    build_worker_env(m);
    if (resolve_worker_user(m) < 0)
        return -2;
    port = open_listener(m);
    if (port < 0 || scr_init(m, port) < 0)
        return -1;
    m->port = port;
    m->sig_watch.kind = MW_SIGNAL;
    m->core_watch.kind = MW_CORE;
    if (mgr_watch_fd(m, m->sigfd, &m->sig_watch) < 0) {
        log_error("could not watch signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int mgr_main(const struct wf_config *cfg)
{
    static struct mgr mgr; /* static: reachable for the whole process */
    struct mgr *m = &mgr;
    struct epoll_event evs[64];
    int rc;

    m->cfg = cfg;
    msg_set_max_bytes((size_t)cfg->max_message_bytes);
    m->core_fd = -1;
    m->listen_fd = -1;
    m->exit_code = WF_EXIT_OK;
    m->slots.key_of = NULL;
    rc = setup(m);
    if (rc < 0)
        return rc == -2 ? WF_EXIT_USAGE : WF_EXIT_SYSCALL;
    log_info("wf-server %s starting (host %s, heartbeat %d ms)", WF_VERSION, cfg->host_id,
             cfg->heartbeat_ms);
    start_core(m);

    for (;;) {
        int64_t now = ju_mono_ms();
        int64_t next = sv_timers(m, now);
        int64_t dnext = dsc_timers(m, now);
        int timeout, n;

        if (dnext < next)
            next = dnext;
        /* An orphan that has not exited yet is found by a sweep each second. */
        if (now >= m->next_orphan_sweep) {
            kill_orphans(m);
            m->next_orphan_sweep = now + 1000;
        }
        if (m->next_orphan_sweep < next)
            next = m->next_orphan_sweep;

        if (m->core_restart_at > 0 && !m->shutting_down) {
            if (now >= m->core_restart_at)
                start_core(m);
            else if (m->core_restart_at < next)
                next = m->core_restart_at;
        }
        if (m->shutting_down) {
            if (shutdown_step(m, now))
                break;
            if (m->shutdown_kill_at > 0 && m->shutdown_kill_at < next)
                next = m->shutdown_kill_at;
        }
        /* At least once a second: shutdown progress, and a safety net for
         * any deadline set outside sv_timers. */
        timeout = next - now < 0 ? 0 : (next - now > 1000 ? 1000 : (int)(next - now));
        n = epoll_wait(m->epfd, evs, 64, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("could not wait for events: %s", strerror(errno));
            return WF_EXIT_SYSCALL;
        }
        for (int i = 0; i < n; i++) {
            struct mgr_watch *w = evs[i].data.ptr;
            switch (w->kind) {
            case MW_SIGNAL:
                process_signals(m);
                break;
            case MW_CORE:
                if (m->core_ch != NULL && (evs[i].events & EPOLLOUT))
                    core_writable(m);
                if (m->core_ch != NULL)
                    process_core_message(m);
                break;
            case MW_WORKER:
                if (evs[i].events & EPOLLOUT)
                    sv_worker_writable(m, w->ptr);
                sv_worker_message(m, w->ptr);
                break;
            case MW_DESCRIBE:
                dsc_readable(m, w->ptr);
                break;
            }
        }
    }
    sv_free(m);
    dsc_free(m);
    scr_cleanup(m); /* no worker is left to use it */
    if (m->core_ch != NULL)
        chan_free(m->core_ch);
    close(m->listen_fd);
    log_info("shut down");
    return m->exit_code;
}
