/*
 * test_hostile.c: project code that attacks the service (issue 12). Each
 * hostile plugin of tests/plugins (attack_*.c) is deployed to a project of
 * its own and started beside a "victim" project; its constructor attacks
 * (in the deploy-time describer and in the worker) and writes one line per
 * attempt to the server's log (format in tests/plugins/attack.h).
 *
 * Checked for every attack: no line says SUCCEEDED; the manager and core
 * keep their pids, /health answers, the victim's worker keeps its pid and
 * its scratch file is unchanged and unshared; what the plugin forked is
 * gone once its worker is. Each blocked attempt is printed with the layer
 * that stops it (given the layers the worker reports in its status).
 *
 * A second phase turns the sandbox's kernel layers off
 * (WF_SANDBOX_DISABLE=landlock,seccomp, a diagnostic setting) and shows the
 * layers under them hold alone: manager and core are not dumpable (no
 * environment, memory or ptrace for anyone of the same uid) and, when the
 * server runs as root, workers have a uid of their own (no signal to the
 * server). A layer the kernel lacks is reported and its checks skipped.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char runtime_dir[256];
static pid_t manager_pid, core_pid, victim_pid;
static int no_landlock; /* a worker of this phase reported Landlock missing */

/* What the evil worker's status says of its sandbox. */
struct layers {
    int landlock, seccomp, root;
    int disabled; /* this phase turned Landlock and seccomp off */
};

/* The layer that stops an attempt of attack (the first that holds). */
static const char *layer_for(const char *attack, const char *line, const struct layers *l)
{
    int server = strstr(line, "manager") != NULL || strstr(line, "core") != NULL;

    if (strcmp(attack, "secrets") == 0 || strcmp(attack, "ptrace") == 0) {
        if (strstr(line, "process_vm_readv") != NULL || strcmp(attack, "ptrace") == 0)
            return l->seccomp ? "seccomp" : "not dumpable";
        return l->landlock ? "Landlock (/proc/self only)" : "not dumpable";
    }
    if (strcmp(attack, "signal") == 0) {
        if (l->seccomp)
            return "seccomp (own process group only)";
        if (l->landlock)
            return "Landlock signal scope";
        return server && l->root ? "workers' own uid" : "none: it failed by itself";
    }
    if (strcmp(attack, "tamper") == 0) {
        if (strstr(line, "our own code") != NULL)
            return "memfd seals";
        if (strstr(line, "instance directory") != NULL)
            return l->landlock ? "Landlock" : "directory mode 0711";
        if (strstr(line, "worker program") != NULL)
            return l->landlock ? "Landlock (read only)" : "file mode";
        return l->landlock ? "Landlock (/proc/self only)" : "not dumpable";
    }
    if (strcmp(attack, "scratch") == 0)
        return l->landlock ? "Landlock (own scratch directory only)" : "none: it failed by itself";
    if (strcmp(attack, "exhaust") == 0)
        return "resource limits";
    return "?";
}

/*
 * The layer this kernel lacks (the worker reported it missing while the
 * phase did not turn it off) that alone stops what a SUCCEEDED line did,
 * or NULL: an attack that succeeds only for want of it is skipped, with the
 * reason printed, rather than failed.
 */
static const char *kernel_lacks(const char *attack, const char *line, const struct layers *l)
{
    if (l->disabled)
        return NULL;
    if (strcmp(attack, "scratch") == 0 && !l->landlock)
        return "Landlock";
    if (strcmp(attack, "signal") == 0 && !l->seccomp && !l->landlock &&
        (strstr(line, "another worker") != NULL || strstr(line, "kill(-1)") != NULL))
        return "seccomp and Landlock";
    if (strcmp(attack, "tamper") == 0 && !l->landlock && strstr(line, "another worker") != NULL)
        return "Landlock";
    return NULL;
}

/* Counts and prints the log lines of attack; returns the SUCCEEDED count
 * (-1: the attack never reported). Orphan pids are collected. */
static int read_report(const struct th_server *srv, const char *attack, const struct layers *l,
                       const char *const *allowed, pid_t *pids, int *npids)
{
    char *log = th_read_file(srv->log_path, NULL);
    char tag[64];
    int lines = 0, bad = 0;

    snprintf(tag, sizeof(tag), " %s: ", attack);
    for (char *p = log; p != NULL && (p = strstr(p, "wf-attack ")) != NULL;) {
        char *eol = strchr(p, '\n');
        char *t;
        if (eol != NULL)
            *eol = '\0';
        t = strstr(p, tag);
        if (t != NULL && t - p < 32) {
            const char *what = t + strlen(tag);
            lines++;
            if (strncmp(what, "SUCCEEDED", 9) == 0) {
                const char *missing = kernel_lacks(attack, what, l);
                int ok = 0;
                for (const char *const *a = allowed; a != NULL && *a != NULL; a++)
                    ok |= strstr(what, *a) != NULL;
                if (ok)
                    printf("  %s  [allowed in this phase]\n", p + 10);
                else if (missing != NULL)
                    printf("  %s  [SKIPPED: this kernel lacks %s, the layer that stops it]\n",
                           p + 10, missing);
                else
                    printf("  %s\n", p + 10);
                bad += !ok && missing == NULL;
            } else if (strncmp(what, "blocked", 7) == 0) {
                printf("  %s  [%s]\n", p + 10, layer_for(attack, what, l));
            } else {
                printf("  %s\n", p + 10);
            }
            if (pids != NULL && *npids < 8) {
                const char *pp = strstr(what, " pid=");
                if (pp != NULL && strstr(what, "info") == what)
                    pids[(*npids)++] = (pid_t)strtol(pp + 5, NULL, 10);
            }
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    free(log);
    return lines == 0 ? -1 : bad;
}

/* The server, core and victim are as they were, the victim's file too. */
static void check_unharmed(const struct th_server *srv, const char *victim_file)
{
    char *v;

    CHECK(srv->exited == 0 && th_pid_alive(manager_pid));
    CHECK_EQ_INT(th_proc_child(manager_pid, "wf-core"), core_pid);
    CHECK_EQ_INT(th_http_json(srv, "GET", "/health", NULL, NULL), 200);
    CHECK_EQ_INT(th_status_pid(srv, "victim", NULL), victim_pid);
    v = th_read_file(victim_file, NULL);
    CHECK_STR(v, "the victim's secret\n");
    free(v);
}

/* Writes the victim's secret into its scratch directory, owned as the
 * directory is (so only the sandbox keeps other projects out). */
static int plant_secret(const char *dir, char *file, size_t len)
{
    struct stat st;
    FILE *f;

    snprintf(file, len, "%s/secret.txt", dir);
    if (stat(dir, &st) < 0 || (f = fopen(file, "w")) == NULL)
        return -1;
    fputs("the victim's secret\n", f);
    fclose(f);
    if (chmod(file, 0600) < 0 || (geteuid() == 0 && chown(file, st.st_uid, st.st_gid) < 0))
        return -1;
    return 0;
}

/*
 * Deploys attack's plugin to project evil-<attack> (stored behind the API
 * when the describer could not finish), starts it, reads its report,
 * checks nothing was harmed, stops it and checks what it forked is gone.
 */
static void run_attack(const struct th_server *srv, PGconn *pg, const char *attack,
                       const char *const *allowed, const char *victim_file, int phase)
{
    char project[64], path[512], plugin[64], targets[600];
    struct layers l = {0, 0, geteuid() == 0, phase == 2};
    pid_t pids[8];
    int npids = 0, bad;
    cJSON *j = NULL;
    FILE *f;
    long st;
    pid_t evil;

    printf("attack %s (phase %d):\n", attack, phase);
    snprintf(project, sizeof(project), "evil-%s-%d", attack, phase);
    snprintf(path, sizeof(path), "/projects/%s/activities/noop", project);
    snprintf(plugin, sizeof(plugin), "attack_%s", attack);
    CHECK_EQ_INT(th_create_project(srv, project, NULL), 201);
    /* The attacker knows every pid: they wait in its scratch directory,
     * made now (the manager hands it over to the worker's user). */
    snprintf(path, sizeof(path), "%s/%d/%s", runtime_dir, srv->port, project);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(targets, sizeof(targets), "%s/targets", path);
    f = fopen(targets, "w");
    if (CHECK(f != NULL)) {
        fprintf(f, "%d core\n%d victim\n", (int)core_pid, (int)victim_pid);
        fclose(f);
    }
    st = th_put_plugin(srv, path, plugin, NULL);
    if (st != 201)
        CHECK(th_store_plugin(pg, project, "noop", plugin) == 0);
    snprintf(path, sizeof(path), "{\"projectId\":\"%s\"}", project);
    st = th_http_json(srv, "POST", "/workers/start", path, &j);
    cJSON_Delete(j);
    j = NULL;
    evil = th_status_pid(srv, project, &j);
    if (j != NULL) {
        const cJSON *sb = cJSON_GetObjectItem(j, "sandbox");
        l.landlock = th_json_bool(sb, "landlock") == 1;
        l.seccomp = th_json_bool(sb, "seccomp") == 1;
    }
    cJSON_Delete(j);
    no_landlock |= !l.landlock;
    printf("  (worker pid %d, start %ld; landlock %d, seccomp %d, root %d)\n", (int)evil, st,
           l.landlock, l.seccomp, l.root);
    bad = read_report(srv, attack, &l, allowed, pids, &npids);
    if (!CHECK(bad == 0))
        fprintf(stderr, "attack %s: %d attempt(s) not stopped (or no report)\n", attack, bad);
    check_unharmed(srv, victim_file);

    snprintf(path, sizeof(path), "{\"projectId\":\"%s\"}", project);
    th_http_json(srv, "POST", "/workers/stop", path, NULL);
    if (evil > 0)
        CHECK(th_wait_pid_gone(evil, 10000, 20) == 0);
    for (int i = 0; i < npids; i++) {
        if (!CHECK(th_wait_pid_gone(pids[i], 5000, 20) == 0))
            fprintf(stderr, "process %d left by attack %s is still alive\n", (int)pids[i], attack);
    }
}

/* Starts a server with overrides, the victim and its secret. */
static int start_phase(struct th_db *db, struct th_server *srv, const char *const *overrides,
                       char *victim_file, size_t len)
{
    char dir[512];
    long st;

    if (!CHECK(th_server_start(srv, db, overrides) == 0))
        return -1;
    manager_pid = srv->pid;
    core_pid = th_proc_child(manager_pid, "wf-core");
    CHECK(core_pid > 0);
    st = th_create_project(srv, "victim", NULL);
    CHECK(st == 201 || st == 409); /* phase 2 finds it in the database */
    st = th_put_plugin(srv, "/projects/victim/activities/echo", "good", NULL);
    CHECK(st == 201 || st == 200);
    CHECK_EQ_INT(th_http_json(srv, "POST", "/workers/start", "{\"projectId\":\"victim\"}", NULL),
                 200);
    victim_pid = th_status_pid(srv, "victim", NULL);
    CHECK(victim_pid > 0);
    snprintf(dir, sizeof(dir), "%s/%d/victim", runtime_dir, srv->port);
    return CHECK(plant_secret(dir, victim_file, len) == 0) ? 0 : -1;
}

static void stop_phase(struct th_server *srv, const char *victim_file)
{
    char pwned[600];

    /* Nothing was planted beside the victim's secret. */
    snprintf(pwned, sizeof(pwned), "%s", victim_file);
    if (strrchr(pwned, '/') != NULL)
        snprintf(strrchr(pwned, '/'), sizeof(pwned) - (size_t)(strrchr(pwned, '/') - pwned),
                 "/pwned");
    if (no_landlock)
        printf("victim's scratch directory: not checked (no Landlock in this phase)\n");
    else
        CHECK(access(pwned, F_OK) < 0);
    no_landlock = 0;
    CHECK_EQ_INT(th_server_stop(srv, 20000), 0);
    th_server_cleanup(srv);
    memset(srv, 0, sizeof(*srv));
}

int main(void)
{
    static const char *const attacks[] = {"secrets", "ptrace", "signal", "tamper",
                                          "scratch", "orphan", "exhaust"};
    /* Without the kernel layers, only the server must stay out of reach:
     * other workers share the uid, so signals to them and their /proc get
     * through, and nothing but Landlock keeps projects' scratch apart. */
    static const char *const phase2_attacks[] = {"secrets", "ptrace", "signal", "orphan"};
    static const char *const phase2_allowed[] = {"another worker", "kill(-1)", NULL};
#ifdef WF_SANITIZED
    /* AddressSanitizer reserves terabytes of address space: no RLIMIT_AS
     * in sanitizer builds (worker/sandbox.c), so memory is not bounded. */
    static const char *const phase1_allowed[] = {"MiB, no limit", NULL};
#else
    static const char *const phase1_allowed[] = {NULL};
#endif
    struct th_db db = {0};
    struct th_server srv = {0};
    PGconn *pg = NULL;
    char env_rt[300], victim_file[600];
    const char *overrides[8];
    int n = 0;

    if (th_init("test_hostile", 1) < 0)
        return TH_SKIP;
    snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/wf-test-hostile-%d", (int)getpid());
    snprintf(env_rt, sizeof(env_rt), "WF_RUNTIME_DIR=%s", runtime_dir);
    overrides[n++] = env_rt;
    overrides[n++] = "WF_WORKER_MAX_FILES=256";
    overrides[n++] = "WF_WORKER_MAX_PROCS=64";
#ifndef WF_SANITIZED
    overrides[n++] = "WF_WORKER_MAX_AS_MB=512";
#endif
    overrides[n++] = "WF_API_TOKEN=hostile-test-token";
    overrides[n] = NULL;

    if (!CHECK(th_db_create(&db) == 0))
        goto out;
    pg = th_db_connect(&db);
    if (!CHECK(pg != NULL))
        goto out;

    /* Phase 1: every layer the kernel has. */
    if (start_phase(&db, &srv, overrides, victim_file, sizeof(victim_file)) == 0) {
        for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
            run_attack(&srv, pg, attacks[i], phase1_allowed, victim_file, 1);
        stop_phase(&srv, victim_file);
    }

    /* Phase 2: Landlock and seccomp off. */
    overrides[n++] = "WF_SANDBOX_DISABLE=landlock,seccomp";
    overrides[n] = NULL;
    if (start_phase(&db, &srv, overrides, victim_file, sizeof(victim_file)) == 0) {
        for (size_t i = 0; i < sizeof(phase2_attacks) / sizeof(phase2_attacks[0]); i++) {
            if (strcmp(phase2_attacks[i], "signal") == 0 && geteuid() != 0) {
                printf("attack signal (phase 2): skipped: the server does not run as root, so "
                       "its workers share its uid and only seccomp or Landlock stop signals\n");
                continue;
            }
            run_attack(&srv, pg, phase2_attacks[i], phase2_allowed, victim_file, 2);
        }
        stop_phase(&srv, victim_file);
    }
out:
    th_server_cleanup(&srv);
    if (pg != NULL)
        PQfinish(pg);
    th_db_drop(&db);
    return th_finish();
}
