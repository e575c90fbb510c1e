/*
 * deploy.c: see deploy.h.
 *
 * Order matters: all files are prepared (compiled, read, ELF-checked,
 * dlopen'ed and their descriptor checked) before the first upload, so a
 * failure anywhere leaves the server as it was. A plugin is loaded here
 * with RTLD_NOW | RTLD_LOCAL exactly as a worker loads it, so an unresolved
 * symbol or a wrong ABI shows up on the developer's machine instead of in a
 * worker's start error; the names it declares are copied out before
 * dlclose, because they point into the plugin's memory.
 *
 * A FILE.yaml (or .yml) definition is converted to JSON here, with the
 * server's own converter (common/yamljson.c), and the JSON is uploaded: its
 * document.name, which names the upload, has to be read here anyway, a
 * YAML error is reported against the file before anything is uploaded, and
 * the server stores the same canonical JSON it would have made itself.
 *
 * The compiler runs with fork + execvp (no shell: file names are never
 * interpreted), with our stderr, so its diagnostics are shown as they are.
 * Temporary output lives in a mkdtemp directory removed before returning.
 */
#include "deploy.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wf/plugin.h>

#include "elfcheck.h"
#include "yamljson.h"

#ifndef WF_INCLUDE_DIR
#define WF_INCLUDE_DIR "/usr/local/include"
#endif
#ifndef WF_INSTALL_INCLUDE_DIR
#define WF_INSTALL_INCLUDE_DIR "/usr/local/include"
#endif

#define DEPLOY_MAX_BYTES (256u * 1024u * 1024u)
#define DEPLOY_MAX_ARGS 64

/* One file on the command line, prepared for upload. */
struct prepared {
    const char *arg;      /* as given (borrowed from argv) */
    char *so_path;        /* the shared object to load and send (malloc'ed) */
    char *tmpdir;         /* mkdtemp directory of a compiled .c, or NULL */
    unsigned char *bytes; /* the file's contents, a YAML file's as JSON (malloc'ed) */
    size_t len;
    int definition; /* a declarative definition: bytes are JSON */
    char *name;     /* the plugin's name and version (malloc'ed) */
    char *version;
    char **workflows; /* declared names (malloc'ed, each malloc'ed) */
    size_t nworkflows;
    char **activities;
    size_t nactivities;
};

void ctl_deploy_usage(FILE *f)
{
    fputs("usage: wfctl deploy --project P FILE.so|FILE.c|FILE.json|FILE.yaml ...\n"
          "\n"
          "Checks each plugin locally and uploads it to project P: once per\n"
          "workflow and once per activity it declares (the server keeps the\n"
          "bytes once). A FILE.json is a declarative workflow definition\n"
          "(docs/declarative.md), deployed as the workflow its document.name\n"
          "names; the server checks it and lists every error with its path.\n"
          "A FILE.yaml or FILE.yml is the same definition in YAML: converted\n"
          "to JSON here (an error names the file, line and column) and\n"
          "uploaded as that JSON.\n"
          "A FILE.c is first compiled with $CC (default cc) as\n"
          "  cc -std=c11 -O2 -fPIC -shared -I<include dir> -o <tmp>.so FILE.c -lcjson\n"
          "where <include dir> holds wf/plugin.h ($WF_INCLUDE_DIR, default\n" WF_INCLUDE_DIR
          " or " WF_INSTALL_INCLUDE_DIR ").\n"
          "Nothing is uploaded unless every file passes its checks. The new code\n"
          "is loaded by the next `wfctl restart P`.\n"
          "\n"
          "options:\n"
          "  --project P   the project to deploy to (required)\n"
          "  -h, --help    show this help\n",
          f);
}

/* Frees everything a prepared file holds, removing its temporary files. */
static void prepared_free(struct prepared *p)
{
    if (p->tmpdir != NULL) {
        if (p->so_path != NULL)
            unlink(p->so_path);
        rmdir(p->tmpdir);
    }
    for (size_t i = 0; i < p->nworkflows; i++)
        free(p->workflows[i]);
    for (size_t i = 0; i < p->nactivities; i++)
        free(p->activities[i]);
    free(p->workflows);
    free(p->activities);
    free(p->name);
    free(p->version);
    free(p->bytes);
    free(p->so_path);
    free(p->tmpdir);
    memset(p, 0, sizeof(*p));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Adds -I options for the directories holding wf/plugin.h to argv at *n.
 * $WF_INCLUDE_DIR wins; else the build tree's and the installed one's. */
static void add_include_dirs(char **argv, size_t *n, char (*bufs)[4200])
{
    const char *env = getenv("WF_INCLUDE_DIR");
    const char *dirs[2] = {WF_INCLUDE_DIR, WF_INSTALL_INCLUDE_DIR};
    char probe[4200];
    size_t used = 0;

    if (env != NULL && env[0] != '\0') {
        snprintf(bufs[0], sizeof(bufs[0]), "-I%s", env);
        argv[(*n)++] = bufs[0];
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(probe, sizeof(probe), "%s/wf/plugin.h", dirs[i]);
        if (access(probe, R_OK) != 0)
            continue;
        snprintf(bufs[used], sizeof(bufs[used]), "-I%s", dirs[i]);
        argv[(*n)++] = bufs[used++];
    }
    if (used == 0) { /* let the compiler say it cannot find the header */
        snprintf(bufs[0], sizeof(bufs[0]), "-I%s", WF_INCLUDE_DIR);
        argv[(*n)++] = bufs[0];
    }
}

/* Runs argv (argv[0] looked up in PATH) and waits. Returns 0 when it exited
 * with status 0, else -1 after printing why. */
static int run_compiler(char **argv, const char *src)
{
    int status;
    pid_t pid, w;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        ctl_error("could not compile %s: fork: %s", src, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* the child: its stdout goes to our stderr, with its diagnostics */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "wfctl: could not run the compiler \"%s\": %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        ctl_error("could not compile %s: waitpid: %s", src, strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        ctl_error("could not compile %s: %s exited with status %d", src, argv[0],
                  WEXITSTATUS(status));
    else
        ctl_error("could not compile %s: %s killed by signal %d", src, argv[0],
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

/*
 * Compiles p->arg into a fresh temporary directory and sets p->tmpdir and
 * p->so_path. Returns 0, or -1 (printed; whatever was set is freed by
 * prepared_free).
 */
static int compile_source(struct prepared *p)
{
    /* execvp wants writable strings: the fixed arguments live here */
    static char opt_std[] = "-std=c11", opt_o2[] = "-O2", opt_pic[] = "-fPIC",
                opt_shared[] = "-shared", opt_out[] = "-o", opt_lcjson[] = "-lcjson";
    char *argv[DEPLOY_MAX_ARGS + 16], incs[2][4200], tmpl[4096];
    char *cc = NULL, *src = NULL, *save = NULL, *tok;
    const char *env_cc = getenv("CC"), *tmp = getenv("TMPDIR"), *base;
    size_t n = 0, blen;
    int rc = -1;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    snprintf(tmpl, sizeof(tmpl), "%s/wfctl-XXXXXX", tmp);
    if (mkdtemp(tmpl) == NULL) {
        ctl_error("could not create a temporary directory in %s: %s", tmp, strerror(errno));
        return -1;
    }
    base = strrchr(p->arg, '/');
    base = base != NULL ? base + 1 : p->arg;
    blen = strlen(base) - 2; /* without ".c" */
    p->tmpdir = strdup(tmpl);
    p->so_path = malloc(strlen(tmpl) + blen + 5);
    /* $CC may carry arguments ("ccache gcc -m64"): split it on blanks. */
    cc = strdup(env_cc != NULL && env_cc[0] != '\0' ? env_cc : "cc");
    src = strdup(p->arg);
    if (p->tmpdir == NULL || p->so_path == NULL || cc == NULL || src == NULL) {
        ctl_error("could not compile %s: out of memory", p->arg);
        if (p->tmpdir == NULL)
            rmdir(tmpl);
        goto out;
    }
    snprintf(p->so_path, strlen(tmpl) + blen + 5, "%s/%.*s.so", tmpl, (int)blen, base);
    for (tok = strtok_r(cc, " \t", &save); tok != NULL && n < DEPLOY_MAX_ARGS;
         tok = strtok_r(NULL, " \t", &save))
        argv[n++] = tok;
    if (n == 0) {
        ctl_error("could not compile %s: $CC names no compiler", p->arg);
        goto out;
    }
    argv[n++] = opt_std;
    argv[n++] = opt_o2;
    argv[n++] = opt_pic;
    argv[n++] = opt_shared;
    add_include_dirs(argv, &n, incs);
    argv[n++] = opt_out;
    argv[n++] = p->so_path;
    argv[n++] = src;
    argv[n++] = opt_lcjson;
    argv[n] = NULL;
    rc = run_compiler(argv, p->arg);
out:
    free(src);
    free(cc);
    return rc;
}

/* Reads the whole file p->so_path into p->bytes. Returns 0, or -1 (printed). */
static int read_plugin(struct prepared *p)
{
    struct stat st;
    size_t got = 0;
    int fd = open(p->so_path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        ctl_error("could not open %s: %s", p->arg, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ctl_error("could not read %s: not a regular file", p->arg);
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > DEPLOY_MAX_BYTES) {
        ctl_error("could not read %s: larger than %u bytes", p->arg, DEPLOY_MAX_BYTES);
        close(fd);
        return -1;
    }
    p->bytes = malloc((size_t)st.st_size + 1);
    if (p->bytes == NULL) {
        ctl_error("could not read %s: out of memory", p->arg);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p->bytes + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ctl_error("could not read %s: %s", p->arg, r < 0 ? strerror(errno) : "file shrank");
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    p->len = got;
    return 0;
}

/* Copies n names out of a table of n entries of `stride` bytes whose first
 * member is a name. Returns the malloc'ed array, or NULL (out of memory, or
 * an entry without a name: *bad set). */
static char **copy_names(const void *table, size_t n, size_t stride, int *bad)
{
    char **out = calloc(n + 1, sizeof(*out));

    for (size_t i = 0; out != NULL && i < n; i++) {
        const char *name = *(const char *const *)(const void *)((const char *)table + i * stride);
        if (name == NULL || name[0] == '\0') {
            *bad = 1;
        } else {
            out[i] = strdup(name);
            if (out[i] != NULL)
                continue;
        }
        for (size_t j = 0; j < i; j++)
            free(out[j]);
        free(out);
        return NULL;
    }
    return out;
}

/* Loads p->so_path here as a worker would, checks the descriptor and
 * copies the declared names. Returns 0, or -1 (printed). */
static int inspect_plugin(struct prepared *p)
{
    const struct wf_plugin *d;
    wf_plugin_entry_fn entry;
    const char *e;
    void *dl;
    int bad = 0, rc = -1;

    dlerror();
    dl = dlopen(p->so_path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        e = dlerror();
        ctl_error("could not load plugin \"%s\": %s", p->arg, e != NULL ? e : "unknown error");
        return -1;
    }
    *(void **)&entry = dlsym(dl, WF_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        ctl_error("incompatible plugin \"%s\": missing magic block (no %s symbol)", p->arg,
                  WF_PLUGIN_ENTRY_SYMBOL);
        goto out;
    }
    d = entry();
    if (d == NULL || d->magic != WF_PLUGIN_MAGIC) {
        ctl_error("incompatible plugin \"%s\": missing magic block", p->arg);
        goto out;
    }
    if (d->abi_version != WF_ABI_VERSION) {
        ctl_error("incompatible plugin \"%s\": ABI version mismatch (plugin %u, wfctl %u); "
                  "rebuild it against this wf/plugin.h",
                  p->arg, d->abi_version, WF_ABI_VERSION);
        goto out;
    }
    if (d->size != sizeof(struct wf_plugin) || (d->n_workflows > 0 && d->workflows == NULL) ||
        (d->n_activities > 0 && d->activities == NULL) || d->n_workflows > 100000 ||
        d->n_activities > 100000) {
        ctl_error("incompatible plugin \"%s\": malformed descriptor", p->arg);
        goto out;
    }
    if (d->n_workflows + d->n_activities == 0) {
        ctl_error("could not deploy %s: the plugin declares no workflow and no activity", p->arg);
        goto out;
    }
    p->name = strdup(d->name != NULL ? d->name : "");
    p->version = strdup(d->version != NULL ? d->version : "");
    p->workflows = copy_names(d->workflows, d->n_workflows, sizeof(*d->workflows), &bad);
    p->activities = copy_names(d->activities, d->n_activities, sizeof(*d->activities), &bad);
    if (bad) {
        ctl_error("incompatible plugin \"%s\": a workflow or activity has no name", p->arg);
        goto out;
    }
    if (p->name == NULL || p->version == NULL || p->workflows == NULL || p->activities == NULL) {
        ctl_error("could not inspect %s: out of memory", p->arg);
        goto out;
    }
    p->nworkflows = d->n_workflows;
    p->nactivities = d->n_activities;
    rc = 0;
out:
    dlclose(dl);
    return rc;
}

/* A definition: JSON whose document names the workflow (the server checks
 * the rest). Returns 0, or -1 (printed). */
static int inspect_definition(struct prepared *p)
{
    cJSON *root = cJSON_ParseWithLength((const char *)p->bytes, p->len);
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(root, "document");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "name"));
    const char *version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "version"));
    int rc = -1;

    if (root == NULL)
        ctl_error("could not deploy %s: not valid JSON", p->arg);
    else if (name == NULL || name[0] == '\0')
        ctl_error("could not deploy %s: no document.name (the workflow's name)", p->arg);
    else if ((p->workflows = calloc(1, sizeof(*p->workflows))) == NULL ||
             (p->workflows[0] = strdup(name)) == NULL || (p->name = strdup("definition")) == NULL ||
             (p->version = strdup(version != NULL ? version : "")) == NULL)
        ctl_error("could not deploy %s: out of memory", p->arg);
    else
        rc = 0;
    if (p->workflows != NULL && p->workflows[0] != NULL)
        p->nworkflows = 1;
    cJSON_Delete(root);
    return rc;
}

/* Replaces p's YAML bytes by their JSON. Returns 0, or -1 (printed). */
static int yaml_to_json(struct prepared *p)
{
    char err[256];
    cJSON *root = yj_parse((const char *)p->bytes, p->len, err, sizeof(err));
    char *json;

    if (root == NULL) {
        ctl_error("could not deploy %s: %s", p->arg, err);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        ctl_error("could not deploy %s: a definition must be a mapping (document, do, ...)",
                  p->arg);
        return -1;
    }
    json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (json == NULL) {
        ctl_error("could not deploy %s: out of memory", p->arg);
        return -1;
    }
    free(p->bytes);
    p->bytes = (unsigned char *)json;
    p->len = strlen(json);
    return 0;
}

/* Compiles (for a .c), reads, checks and inspects one file. Returns 0, or
 * -1 (printed; prepared_free cleans up). */
static int prepare(struct prepared *p)
{
    char why[256];
    int yaml = ends_with(p->arg, ".yaml") || ends_with(p->arg, ".yml");

    if (yaml || ends_with(p->arg, ".json")) {
        p->definition = 1;
        p->so_path = strdup(p->arg);
        if (p->so_path == NULL || read_plugin(p) != 0)
            return -1;
        if (yaml && yaml_to_json(p) != 0)
            return -1;
        return inspect_definition(p);
    }
    if (ends_with(p->arg, ".c")) {
        if (compile_source(p) != 0)
            return -1;
    } else {
        /* a name without a slash would make dlopen search the library path */
        size_t n = strlen(p->arg) + 3;
        p->so_path = malloc(n);
        if (p->so_path == NULL) {
            ctl_error("could not prepare %s: out of memory", p->arg);
            return -1;
        }
        snprintf(p->so_path, n, "%s%s", strchr(p->arg, '/') != NULL ? "" : "./", p->arg);
    }
    if (read_plugin(p) != 0)
        return -1;
    if (!elf_check_so(p->bytes, p->len, why, sizeof(why))) {
        ctl_error("could not load plugin \"%s\": %s", p->arg, why);
        return -1;
    }
    return inspect_plugin(p);
}

/* Uploads p's bytes as workflow or activity `name`. Returns a ctl_exit. */
static int upload(const struct ctl_client *c, const char *project, const struct prepared *p,
                  const char *kind, const char *name)
{
    struct ctl_reply r;
    const cJSON *item, *ver;
    const char *sha;
    char path[512];
    int rc;

    if (ctl_path(path, sizeof(path),
                 strcmp(kind, "workflow") == 0 ? "/projects/%s/workflows/%s"
                                               : "/projects/%s/activities/%s",
                 project, name) != 0)
        return CTL_EXIT_USAGE;
    rc = ctl_request(c, "PUT", path, p->bytes, p->len,
                     p->definition ? "application/json" : "application/octet-stream", &r);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_print_raw(c, &r);
    rc = ctl_reply_check(&r);
    if (rc != CTL_EXIT_OK) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r.json, "errors"))
        {
            fprintf(stderr, "  %s: %s\n", ctl_str(e, "path") ? ctl_str(e, "path") : "?",
                    ctl_str(e, "message") ? ctl_str(e, "message") : "?");
        }
        ctl_error("could not deploy %s %s from %s", kind, name, p->arg);
    } else if (!c->json) {
        item = cJSON_GetObjectItemCaseSensitive(r.json, kind);
        ver = cJSON_GetObjectItemCaseSensitive(item, "version");
        sha = ctl_str(item, "sha256");
        printf("deployed %-8s %-28s v%d  sha %.12s  %s\n", kind, name,
               cJSON_IsNumber(ver) ? ver->valueint : 0, sha != NULL ? sha : "?",
               r.status == 201 ? "(new)" : "(updated)");
    }
    ctl_reply_free(&r);
    return rc;
}

int ctl_deploy_main(const struct ctl_client *c, int argc, char **argv)
{
    const char *project = NULL;
    struct prepared *files;
    int nfiles = 0, rc = CTL_EXIT_OK, i;

    files = calloc((size_t)argc + 1, sizeof(*files));
    if (files == NULL) {
        ctl_error("could not deploy: out of memory");
        return CTL_EXIT_REFUSED;
    }
    for (i = 1; i < argc; i++) {
        int m = ctl_opt_value(argc, argv, &i, "--project", &project);
        if (m < 0) {
            rc = CTL_EXIT_USAGE;
            goto out;
        }
        if (m > 0)
            continue;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ctl_deploy_usage(stdout);
            goto out;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ctl_error("deploy: unknown option %s (see wfctl deploy --help)", argv[i]);
            rc = CTL_EXIT_USAGE;
            goto out;
        }
        files[nfiles++].arg = argv[i];
    }
    if (project == NULL || nfiles == 0) {
        ctl_error("deploy: %s (see wfctl deploy --help)",
                  project == NULL ? "--project is required" : "no plugin file given");
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    /* Check everything first: nothing is uploaded unless all files pass. */
    for (i = 0; i < nfiles && rc == CTL_EXIT_OK; i++)
        if (prepare(&files[i]) != 0)
            rc = CTL_EXIT_REFUSED;
    for (i = 0; i < nfiles && rc == CTL_EXIT_OK; i++) {
        struct prepared *p = &files[i];
        for (size_t j = 0; j < p->nworkflows && rc == CTL_EXIT_OK; j++)
            rc = upload(c, project, p, "workflow", p->workflows[j]);
        for (size_t j = 0; j < p->nactivities && rc == CTL_EXIT_OK; j++)
            rc = upload(c, project, p, "activity", p->activities[j]);
        if (rc == CTL_EXIT_OK && !c->json)
            printf("plugin %s %s from %s: %zu workflow(s), %zu activit%s\n", p->name, p->version,
                   p->arg, p->nworkflows, p->nactivities, p->nactivities == 1 ? "y" : "ies");
    }
    if (rc == CTL_EXIT_OK && !c->json)
        printf("restart the worker to load the new code: wfctl restart %s\n", project);
out:
    for (i = 0; i < nfiles; i++)
        prepared_free(&files[i]);
    free(files);
    return rc;
}
