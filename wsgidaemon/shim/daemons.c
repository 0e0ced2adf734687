/*
 * daemons.c: the daemon groups Apache starts itself, one wsgidaemon master per
 * WSGIDaemonProcess, as docs/apache-managed.md (the contract with the Python side) describes.
 *
 * Configuration. WSGIDaemonProcess keeps its arguments as written; C reads only what the
 * request path needs (processes=, connect-timeout=, socket-timeout=) and python-home= (which
 * interpreter runs the group). Everything else is the daemon's business: `PYTHON -m wsgidaemon
 * group --check` judges the whole directive when Apache checks its configuration (configtest,
 * and the first configuration pass of a start) and Apache refuses what it refuses.
 *
 * Lifetime. The Apache parent forks and execs the masters in the second configuration pass of
 * every generation. Their records are Apache's retained data (the process pool), so a restart
 * finds them again: a group whose command line is unchanged keeps its master, a changed one
 * gets a new master that takes over from the old (--takeover-pid), a removed one's master gets
 * SIGTERM. Each running master is registered as an APR "other child", which makes the MPM tell
 * us of its death, and it is started again, with --start-delay backing off while it dies young.
 * A registration holds a pointer to a function of this module, which Apache unloads and loads
 * again with every generation, so registrations live in the generation's pool (pconf) and are
 * made again by each generation; only the records outlive it. When Apache exits every master
 * gets SIGTERM; if Apache is killed outright, the masters read end of file on the socket pair
 * whose other end only the Apache parent holds (--parent-fd).
 *
 * Logs. A master's stdout and stderr are the main error log, and its workers inherit them. A
 * restart opens the log again (logrotate renames error.log, then reloads Apache), so every
 * restart hands each running master this generation's log descriptor over its --parent-fd
 * socket (SCM_RIGHTS); the master takes it and passes it on to its workers. A path would not
 * do: the workers run as another user, who cannot open Apache's log.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "unixd.h"
#include "apr_lib.h"
#include "apr_signal.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons.h"

APLOG_USE_MODULE(wsgidaemon);

#ifndef WSGIDAEMON_PYTHON             /* build.py passes the interpreter module-config ran under */
#define WSGIDAEMON_PYTHON "/usr/bin/python3"
#endif
#define KEPT_KEY      "mod_wsgidaemon masters"
#define CHECK_TIMEOUT apr_time_from_sec(60)
#define CHECK_OUTPUT  65536           /* bytes of a check's output kept for the log */
#define YOUNG         apr_time_from_sec(10)  /* a master dying younger starts again later */
#define MAX_DELAY     30              /* seconds of --start-delay at most */
#define GROUPLESS(g)  (!(g) || !*(g) || !strcmp((g), "%{GLOBAL}"))

typedef struct {                      /* a WSGIDaemonProcess, or the implicit group */
    wd_daemon daemon;                 /* what the request path needs */
    const char *args, *where;         /* the arguments as written; FILE:LINE */
    server_rec *server;
    const char *home;                 /* python-home= */
    const char *python, *python_from; /* the interpreter, and what chose it */
    apr_array_header_t *scripts;      /* --import-script paths */
    apr_array_header_t *argv;         /* the master's command line, but per-start flags */
} wd_group;

typedef struct { const char *group, *script; } wd_import;

typedef struct master master;
struct master {                       /* one master process; outlives the generations */
    master *next;
    apr_pool_t *pool;                 /* the record's own, under the process pool */
    const char *name, **argv;         /* group; command line as wd_group.argv */
    int argc, parent_fd;              /* parent_fd: our end of its --parent-fd socket, or -1 */
    apr_proc_t proc;                  /* pid 0 while not running */
    apr_time_t started;
    int delay, retired, seen;         /* retired: replaced or removed, never started again */
    int log_gen;                      /* the generation whose error log the master writes to */
    pid_t takeover;                   /* the master it replaces (--takeover-pid), or 0 */
};

typedef struct { master *masters; pid_t parent; } kept_state;

static apr_hash_t *daemons;           /* every group of this generation, by name */
static apr_array_header_t *groups;    /* the groups Apache starts (wd_group *), in order */
static apr_array_header_t *imports;   /* WSGIImportScript and preloading aliases, in order */
static const char *socket_prefix, *python_home, *python_path;
static apr_pool_t *generation;        /* pconf of the running generation: registrations */
static kept_state *kept;

/* The value of a key=value option when arg starts with key=, else NULL. */
const char *wd_option(const char *arg, const char *key)
{
    apr_size_t n = strlen(key);
    return !strncmp(arg, key, n) && arg[n] == '=' ? arg + n + 1 : NULL;
}

/* Whole seconds, or -1 when value is not a number of them. */
static apr_interval_time_t seconds(const char *value)
{
    char *end;
    long n = value ? strtol(value, &end, 10) : -1;
    return value && *value && !*end && n >= 0 ? apr_time_from_sec(n) : -1;
}

/* The daemon group called name (WSGIDaemonSocket or WSGIDaemonProcess), or NULL. */
wd_daemon *wd_find_daemon(const char *name)
{
    return daemons ? apr_hash_get(daemons, name, APR_HASH_KEY_STRING) : NULL;
}

/* Add a group by name; names are unique across both directives, as mod_wsgi's are. */
static const char *add_daemon(cmd_parms *cmd, wd_daemon *d)
{
    if (wd_find_daemon(d->name))
        return apr_pstrcat(cmd->pool, "Name duplicates previous WSGI daemon definition: ",
                           d->name, NULL);
    apr_hash_set(daemons, d->name, APR_HASH_KEY_STRING, d);
    return NULL;
}

/* WSGIDaemonSocket NAME PATH [connect-timeout=S] [socket-timeout=S]: a daemon run elsewhere. */
const char *wd_set_daemon_socket(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    wd_daemon *d = apr_pcalloc(cmd->pool, sizeof *d);
    apr_interval_time_t t;
    int i;
    if (err || argc < 2)
        return err ? err : "WSGIDaemonSocket takes a process group name, a socket path and options";
    d->name = argv[0], d->path = ap_server_root_relative(cmd->pool, argv[1]);
    d->connect_timeout = apr_time_from_sec(15), d->processes = 1;
    if (!d->path || strlen(d->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return apr_pstrcat(cmd->pool, "WSGIDaemonSocket: bad or too long path: ", argv[1], NULL);
    for (i = 2; i < argc; i++) {
        if ((t = seconds(wd_option(argv[i], "connect-timeout"))) >= 0)
            d->connect_timeout = t;
        else if ((t = seconds(wd_option(argv[i], "socket-timeout"))) >= 0)
            d->socket_timeout = t;
        else
            return apr_pstrcat(cmd->pool, "Invalid option to WSGIDaemonSocket: ", argv[i], NULL);
    }
    return add_daemon(cmd, d);
}

/* The next key=value option of a directive's raw arguments, read as mod_wsgi reads them: the
 * key runs up to '=', the value is one configuration word (quotes allowed). 0 at the end; a
 * word that is not key=value comes back as the key, with a NULL value. */
static int next_option(apr_pool_t *p, const char **args, const char **key, const char **value)
{
    const char *eq;
    *args += strspn(*args, " \t");
    if (!**args)
        return 0;
    eq = *args + strcspn(*args, "= \t");
    if (*eq != '=') {
        *key = ap_getword_conf(p, args), *value = NULL;
        return 1;
    }
    *key = apr_pstrmemdup(p, *args, eq - *args), *args = eq + 1;
    *value = ap_getword_conf(p, args);
    return 1;
}

/* WSGIDaemonProcess NAME [key=value ...]: kept as written for the daemon, which validates it
 * (a malformed option is left for the check to report). */
const char *wd_set_daemon_process(cmd_parms *cmd, void *dummy, const char *args)
{
    wd_group *g = apr_pcalloc(cmd->pool, sizeof *g);
    const char *rest = args, *key, *value, *err;
    apr_interval_time_t t;
    long n;
    g->args = cmd->directive->args, g->server = cmd->server;
    g->where = apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                            cmd->directive->line_num);
    g->daemon.name = ap_getword_conf(cmd->pool, &rest);
    g->daemon.connect_timeout = apr_time_from_sec(15), g->daemon.processes = 1;
    g->daemon.managed = 1;
    if (!*g->daemon.name)
        return "WSGIDaemonProcess takes a daemon group name and options";
    if ((err = add_daemon(cmd, &g->daemon)))
        return err;
    while (next_option(cmd->pool, &rest, &key, &value)) {
        if (!value)
            continue;
        if (!strcmp(key, "processes") && (n = strtol(value, NULL, 10)) > 0)
            g->daemon.processes = (int)n;
        else if (!strcmp(key, "connect-timeout") && (t = seconds(value)) >= 0)
            g->daemon.connect_timeout = t;
        else if (!strcmp(key, "socket-timeout") && (t = seconds(value)) >= 0)
            g->daemon.socket_timeout = t;
        else if (!strcmp(key, "python-home"))
            g->home = value;
    }
    g->scripts = apr_array_make(cmd->pool, 2, sizeof(const char *));
    *(wd_group **)apr_array_push(groups) = g;
    return NULL;
}

/* The group Apache starts under this name, or NULL. */
static wd_group *find_group(const char *name)
{
    int i;
    for (i = 0; i < groups->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(groups, i, wd_group *)->daemon.name, name))
            return APR_ARRAY_IDX(groups, i, wd_group *);
    return NULL;
}

/* WSGIImportScript PATH process-group=NAME application-group=NAME: both required, and the
 * group defined above, as in mod_wsgi. */
const char *wd_set_import_script(cmd_parms *cmd, void *dummy, const char *args)
{
    const char *process_group = NULL, *application_group = NULL, *key, *value;
    const char *script = ap_getword_conf(cmd->pool, &args);
    wd_import *im;
    if (!*script)
        return "WSGIImportScript takes a script file, process-group= and application-group=";
    while (next_option(cmd->pool, &args, &key, &value)) {
        if (value && *value && !strcmp(key, "process-group"))
            process_group = value;
        else if (value && *value && !strcmp(key, "application-group"))
            application_group = value;
        else
            return apr_pstrcat(cmd->pool, "Invalid option to WSGIImportScript: ", key, NULL);
    }
    if (!process_group || !application_group)
        return "WSGIImportScript needs both process-group= and application-group=";
    if (!find_group(process_group))
        return apr_pstrcat(cmd->pool, "WSGIImportScript: process-group=", process_group, " names "
                           "no WSGIDaemonProcess defined above it (there is no embedded mode)",
                           NULL);
    im = apr_array_push(imports);
    im->group = process_group, im->script = ap_server_root_relative(cmd->pool, script);
    return im->script ? NULL : apr_pstrcat(cmd->pool, "Invalid file path ", script, NULL);
}

/* A WSGIScriptAlias(Match) naming both groups preloads its script in the group's workers, as
 * mod_wsgi does, unless a group is chosen per request or the target has $n in it. */
void wd_note_preload(cmd_parms *cmd, const wd_alias *a)
{
    wd_import *im;
    if (!a->process_group || !a->application_group || strstr(a->process_group, "%{") ||
        strstr(a->application_group, "%{") || (a->regex && strchr(a->script, '$')))
        return;
    im = apr_array_push(imports);
    im->group = a->process_group, im->script = a->script;
}

/* WSGISocketPrefix, WSGIPythonHome and WSGIPythonPath (server config only). */
const char *wd_set_server_path(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err)
        return err;
    if (!strcasecmp(cmd->cmd->name, "WSGIPythonHome"))
        python_home = arg;
    else if (!strcasecmp(cmd->cmd->name, "WSGIPythonPath"))
        python_path = arg;            /* no effect: logged at start */
    else if (!(socket_prefix = ap_server_root_relative(cmd->pool, arg)))
        return apr_pstrcat(cmd->pool, "Invalid WSGISocketPrefix ", arg, NULL);
    return NULL;
}

/* WSGIRestrictEmbedded On|Off: accepted for mod_wsgi configurations, no effect, since there
 * is no embedded mode to restrict. */
const char *wd_set_restrict_embedded(cmd_parms *cmd, void *dummy, int flag)
{
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

/* A group's socket: PREFIX.PID.NAME.sock, the name reduced to [A-Za-z0-9._-] (others become
 * '_'), with an FNV-1a hash of the name appended when that changed it. */
static const char *socket_path(apr_pool_t *p, const char *name)
{
    const char *prefix = socket_prefix ? socket_prefix : ap_runtime_dir_relative(p, "wsgi");
    char *safe = apr_pstrdup(p, name), *c;
    apr_uint32_t hash = 2166136261u;
    int changed = 0;
    for (c = safe; *c; c++) {
        hash = (hash ^ (unsigned char)*c) * 16777619u;
        if (!apr_isalnum(*c) && !strchr("._-", *c))
            *c = '_', changed = 1;
    }
    return apr_psprintf(p, "%s.%" APR_PID_T_FMT ".%s%s.sock", prefix, getpid(), safe,
                        changed ? apr_psprintf(p, "-%08x", hash) : "");
}

/* The implicit group is needed when a script alias resolves to no process group at server
 * level: no process-group= and no WSGIProcessGroup (or %{GLOBAL}) for its server or virtual
 * host. WSGIProcessGroup in <Directory> or <Location> may still route such an alias elsewhere,
 * but that is decided per request (as mod_wsgi does), so the group is started whenever the
 * server level leaves an alias without one. Returns the first such alias's FILE:LINE. */
static const char *groupless_aliases(apr_pool_t *p, server_rec *main, int notices)
{
    apr_hash_t *seen = apr_hash_make(p);
    const char *first = NULL;
    server_rec *s;
    int i;
    for (s = main; s; s = s->next) {
        wd_server *c = ap_get_module_config(s->module_config, &wsgidaemon_module);
        wd_dir *d = ap_get_module_config(s->lookup_defaults, &wsgidaemon_module);
        for (i = 0; i < c->aliases->nelts; i++) {
            wd_alias *a = &APR_ARRAY_IDX(c->aliases, i, wd_alias);
            if (!GROUPLESS(a->process_group ? a->process_group : d->process_group) ||
                apr_hash_get(seen, a->where, APR_HASH_KEY_STRING))
                continue;
            apr_hash_set(seen, a->where, APR_HASH_KEY_STRING, a);
            first = first ? first : a->where;
            if (notices)
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, PREFIX "%s %s (%s) names no "
                             "process group and no WSGIProcessGroup applies to it: it is served "
                             "by the implicit daemon group '" IMPLICIT_GROUP "' with default "
                             "options", a->regex ? "WSGIScriptAliasMatch" : "WSGIScriptAlias",
                             a->url, a->where);
        }
    }
    return first;
}

/* The interpreter that runs g: python-home=, else WSGIPythonHome, else the compiled-in one. */
static void choose_python(apr_pool_t *p, wd_group *g)
{
    const char *home = g->home ? g->home : python_home;
    g->python = home ? apr_pstrcat(p, home, "/bin/python", NULL) : WSGIDAEMON_PYTHON;
    g->python_from = g->home ? apr_pstrcat(p, "python-home=", home, NULL)
                   : home ? apr_pstrcat(p, "WSGIPythonHome ", home, NULL)
                   : "the interpreter wsgidaemon module-config recorded";
}

/* Apache's User and Group names, or the identity Apache runs as when not started as root. */
static void apache_identity(apr_pool_t *p, const char **user, const char **group)
{
    struct passwd *pw;
    struct group *gr;
    if (!geteuid() && ap_unixd_config.user_name && ap_unixd_config.group_name) {
        *user = ap_unixd_config.user_name, *group = ap_unixd_config.group_name;
        return;
    }
    pw = getpwuid(geteuid()), gr = getgrgid(getegid());
    *user = pw ? apr_pstrdup(p, pw->pw_name) : apr_psprintf(p, "#%ld", (long)geteuid());
    *group = gr ? apr_pstrdup(p, gr->gr_name) : apr_psprintf(p, "#%ld", (long)getegid());
}

/* Append strings to an argv array; the list ends with NULL. */
static void push_args(apr_array_header_t *argv, ...)
{
    const char *arg;
    va_list ap;
    va_start(ap, argv);
    while ((arg = va_arg(ap, const char *)))
        *(const char **)apr_array_push(argv) = arg;
    va_end(ap);
}

/* Complete this generation's groups: the implicit one if needed, preloads, interpreters,
 * sockets and command lines. An error message, or NULL. */
static const char *prepare(apr_pool_t *p, server_rec *main, int notices)
{
    const char *user, *group, *implicit = groupless_aliases(p, main, notices), **script;
    wd_group *g;
    wd_import *im;
    int i, j;
    if (implicit && !wd_find_daemon(IMPLICIT_GROUP)) {
        g = apr_pcalloc(p, sizeof *g);
        g->daemon.name = g->args = IMPLICIT_GROUP, g->where = implicit, g->server = main;
        g->daemon.connect_timeout = apr_time_from_sec(15), g->daemon.processes = 1;
        g->daemon.managed = 1;
        g->scripts = apr_array_make(p, 1, sizeof(const char *));
        *(wd_group **)apr_array_push(groups) = g;
        apr_hash_set(daemons, IMPLICIT_GROUP, APR_HASH_KEY_STRING, &g->daemon);
    }
    for (i = 0; i < imports->nelts; i++) {
        im = &APR_ARRAY_IDX(imports, i, wd_import);
        if (!(g = find_group(im->group)))
            continue;                 /* an alias naming a WSGIDaemonSocket group, or none */
        for (j = 0, script = (const char **)g->scripts->elts; j < g->scripts->nelts; j++)
            if (!strcmp(script[j], im->script))
                break;
        if (j == g->scripts->nelts)
            *(const char **)apr_array_push(g->scripts) = im->script;
    }
    apache_identity(p, &user, &group);
    for (i = 0; i < groups->nelts; i++) {
        g = APR_ARRAY_IDX(groups, i, wd_group *);
        g->daemon.path = socket_path(p, g->daemon.name);
        if (strlen(g->daemon.path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return apr_psprintf(p, "daemon group '%s' (%s): its socket path %s is longer than "
                                "a Unix socket allows (%d bytes); choose a shorter "
                                "WSGISocketPrefix", g->daemon.name, g->where, g->daemon.path,
                                (int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        choose_python(p, g);
        g->argv = apr_array_make(p, 16, sizeof(const char *));
        push_args(g->argv, g->python, "-m", "wsgidaemon", "group", "--directive", g->args,
                  "--location", g->where, "--socket", g->daemon.path, "--apache-user", user,
                  "--apache-group", group, NULL);
        for (j = 0; j < g->scripts->nelts; j++)
            push_args(g->argv, "--import-script", APR_ARRAY_IDX(g->scripts, j, const char *),
                      NULL);
    }
    return NULL;
}

/* Close every descriptor from fd up. */
static void close_from(int fd)
{
    long max = sysconf(_SC_OPEN_MAX);
#ifdef SYS_close_range
    if (!syscall(SYS_close_range, fd, ~0U, 0))
        return;
#endif
    for (max = max > 0 && max < 65536 ? max : 65536; fd < max; fd++)
        close(fd);
}

/* In a new child: default signals, descriptors 0-2 (and 3 unless extra is -1) from those
 * given and no others, working directory /, then exec argv; never returns. */
static void exec_child(const char *const *argv, int in, int out, int err, int extra)
{
    int fds[4] = {in, out, err, extra}, n = extra >= 0 ? 4 : 3, i;
    sigset_t none;
    for (i = 1; i < NSIG; i++)
        signal(i, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (i = 0; i < n; i++)           /* out of the way first: a source may be 0-3 */
        fds[i] = fcntl(fds[i], F_DUPFD, 10);
    for (i = 0; i < n; i++)
        dup2(fds[i], i);
    close_from(n);
    if (chdir("/"))                   /* as a daemonized Apache; not whatever started it */
        _exit(127);
    execv(argv[0], (char *const *)argv);
    dprintf(1, PREFIX "cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Run a --check command with its stdout and stderr on a pipe; its output (at most
 * CHECK_OUTPUT bytes) and its wait status, or -1 when it ran too long and was killed. */
static int run_check(apr_pool_t *p, const char *const *argv, char **output)
{
    int fds[2] = {-1, -1}, devnull = -1, status = -1, waiting = 1;
    char *buf = apr_palloc(p, CHECK_OUTPUT + 1), scrap[4096];
    apr_time_t deadline = apr_time_now() + CHECK_TIMEOUT;
    apr_size_t len = 0;
    ssize_t n;
    struct pollfd in;
    pid_t child = -1;
    if (pipe2(fds, O_CLOEXEC) || (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
        (child = fork()) < 0) {
        *output = apr_psprintf(p, PREFIX "cannot start it: %s", strerror(errno));
        close(fds[0]), close(fds[1]), close(devnull);  /* those that are open */
        return -1;
    }
    if (!child)
        exec_child(argv, devnull, fds[1], fds[1], -1);
    close(fds[1]), close(devnull);
    in.fd = fds[0], in.events = POLLIN;
    while (waiting) {
        if (apr_time_now() >= deadline) {
            kill(child, SIGKILL), waiting = 0;
            break;
        }
        if (poll(&in, 1, (int)apr_time_as_msec(deadline - apr_time_now()) + 1) <= 0)
            continue;
        n = len < CHECK_OUTPUT ? read(fds[0], buf + len, CHECK_OUTPUT - len)
                               : read(fds[0], scrap, sizeof scrap);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
        if (n > 0 && len < CHECK_OUTPUT)
            len += (apr_size_t)n;
    }
    close(fds[0]);
    buf[len] = '\0', *output = buf;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    return waiting ? status : -1;
}

/* Run g's --check and wait for it: OK, or log what it printed and why it failed. At startup
 * level (configtest, start) the lines appear as they are, like Apache's own syntax errors. */
static int check_group(apr_pool_t *p, server_rec *s, wd_group *g, int startup)
{
    apr_array_header_t *argv = apr_array_copy(p, g->argv);
    int level = startup ? APLOG_STARTUP | APLOG_ERR : APLOG_ERR, status;
    char *output, *line, *last;
    const char *why, *bin = ap_make_dirstr_parent(p, g->python);
    if (access(g->python, X_OK)) {
        ap_log_error(APLOG_MARK, level, 0, s, PREFIX "daemon group '%s' (%s): %s: %s cannot be "
                     "executed (%s); name a Python installation or virtual environment that has "
                     "wsgidaemon (python3 -m venv DIR; DIR/bin/pip install wsgidaemon) with "
                     "python-home=DIR or WSGIPythonHome DIR, or build the module with wsgidaemon "
                     "module-config run from such an environment", g->daemon.name, g->where,
                     g->python_from, g->python, strerror(errno));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    push_args(argv, "--check", NULL);
    *(const char **)apr_array_push(argv) = NULL;
    status = run_check(p, (const char *const *)argv->elts, &output);
    if (status == 0)
        return OK;
    for (line = apr_strtok(output, "\n", &last); line; line = apr_strtok(NULL, "\n", &last))
        ap_log_error(APLOG_MARK, level, 0, s, "%s", line);
    if (strstr(output, "No module named wsgidaemon"))
        ap_log_error(APLOG_MARK, level, 0, s, "%s: %s has no wsgidaemon; install it there with "
                     "%spip install wsgidaemon", g->python_from, g->python, bin);
    why = status < 0 ? apr_psprintf(p, "did not finish within %d s and was killed",
                                    (int)apr_time_sec(CHECK_TIMEOUT))
        : WIFEXITED(status) ? apr_psprintf(p, "exited with status %d", WEXITSTATUS(status))
        : apr_psprintf(p, "was killed by signal %d", WTERMSIG(status));
    ap_log_error(APLOG_MARK, level, 0, s, PREFIX "Syntax error in WSGIDaemonProcess %s at %s: "
                 "%s -m wsgidaemon group --check %s", g->daemon.name, g->where, g->python, why);
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* Check every group; all are checked, so that every error is reported at once. */
static int check_all(apr_pool_t *p, server_rec *s)
{
    int i, rc = OK;
    for (i = 0; i < groups->nelts; i++)
        if (check_group(p, s, APR_ARRAY_IDX(groups, i, wd_group *), 1) != OK)
            rc = HTTP_INTERNAL_SERVER_ERROR;
    return rc;
}

/* The retired master with this pid, still running, or NULL. */
static master *retired_master(pid_t pid)
{
    master *m;
    for (m = kept->masters; m; m = m->next)
        if (m->retired && pid && m->proc.pid == pid)
            return m;
    return NULL;
}

/* The main error log of this generation: ErrorLog's file, or the pipe to its logger with
 * ErrorLog "|...". Apache's own stderr when there is no descriptor (ErrorLog syslog, where
 * Apache points its stderr to /dev/null): what a master started now gets, a kept one too. */
static int error_log_fd(void)
{
    apr_os_file_t os;
    if (ap_server_conf->error_log && !apr_os_file_get(&os, ap_server_conf->error_log))
        return os;
    return 2;
}

/* Fork and exec m's master: stdin /dev/null, stdout and stderr on the main error log, and
 * descriptor 3 one end of a new socket pair whose other end only we keep (--parent-fd 3). */
static int start_master(master *m)
{
    const char *argv[m->argc + 7];
    char delay[16], takeover[32];
    int n = m->argc, pair[2] = {-1, -1}, devnull = -1, log_fd = error_log_fd(), rv;
    pid_t child = -1;
    memcpy(argv, m->argv, n * sizeof *argv);
    argv[n++] = "--parent-fd", argv[n++] = "3";
    if (m->delay)
        snprintf(delay, sizeof delay, "%d", m->delay), argv[n++] = "--start-delay",
        argv[n++] = delay;
    if (!retired_master(m->takeover))
        m->takeover = 0;              /* nothing left to take over from */
    if (m->takeover)
        snprintf(takeover, sizeof takeover, "%ld", (long)m->takeover),
        argv[n++] = "--takeover-pid", argv[n++] = takeover;
    argv[n] = NULL;
    /* SOCK_SEQPACKET: each log hand-over is one message, and closing our end is end of file */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) ||
        (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 || (child = fork()) < 0) {
        rv = errno;
        ap_log_error(APLOG_MARK, APLOG_ALERT, rv, ap_server_conf, PREFIX "cannot start the "
                     "master of daemon group '%s'", m->name);
        close(pair[0]), close(pair[1]), close(devnull);  /* those that are open */
        return rv;
    }
    if (!child)
        exec_child(argv, devnull, log_fd, log_fd, pair[0]);
    close(pair[0]), close(devnull);
    m->proc.pid = child, m->parent_fd = pair[1], m->started = apr_time_now();
    m->log_gen = ap_state_query(AP_SQ_CONFIG_GEN);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf, PREFIX "daemon group '%s': started "
                 "its master (pid %ld)%s%s", m->name, (long)child, m->delay ? ", delayed by "
                 "--start-delay " : "", m->delay ? delay : "");
    return OK;
}

/* Hand m's running master this generation's error log: the message "log" with the descriptor
 * (SCM_RIGHTS) on its --parent-fd socket. Never blocks: a master that has not read the
 * previous ones writes on to the log it has, and is offered the log again next restart. */
static void send_log(master *m)
{
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = {"log", 3};
    struct msghdr msg = {0};
    struct cmsghdr *c;
    int fd = error_log_fd();
    memset(&ctl, 0, sizeof ctl);
    msg.msg_iov = &iov, msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf, msg.msg_controllen = sizeof ctl.buf;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(m->parent_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, ap_server_conf, PREFIX "daemon group "
                     "'%s': cannot hand its master (pid %ld) the reopened error log; it writes "
                     "on to the previous one", m->name, (long)m->proc.pid);
    else
        m->log_gen = ap_state_query(AP_SQ_CONFIG_GEN);
}

/* Forget a master that is gone. */
static void drop(master *m)
{
    master **link = &kept->masters;
    while (*link != m)
        link = &(*link)->next;
    *link = m->next;
    if (m->parent_fd >= 0)
        close(m->parent_fd);
    apr_pool_destroy(m->pool);
}

static void on_master_event(int reason, void *data, int status);

/* Have the MPM tell us when m's master exits (for this generation). */
static void watch(master *m)
{
    apr_proc_other_child_register(&m->proc, on_master_event, m, NULL, generation);
}

/* How a master ended, into buf. The MPM gives the exit status or the number of the signal
 * that killed it, without saying which; a raw wait status comes only while Apache reclaims
 * its children (stop, restart). */
static const char *describe_exit(char *buf, size_t size, int reason, int status)
{
    if (reason == APR_OC_REASON_LOST)
        snprintf(buf, size, "is gone");
    else if (status > 255 && WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (status <= 0)
        snprintf(buf, size, "exited");
    else
        snprintf(buf, size, "exited (status %d, or killed by signal %d: %s)", status, status,
                 apr_signal_description_get(status));
    return buf;
}

/* The MPM's news of a master: when it died, start it again unless it was retired or Apache
 * is stopping; with a doubling --start-delay (1 s up to MAX_DELAY) while it dies young. */
static void on_master_event(int reason, void *data, int status)
{
    master *m = data;
    apr_interval_time_t lived = apr_time_now() - m->started - apr_time_from_sec(m->delay);
    pid_t pid = m->proc.pid;
    char how[128], again[64] = "";
    int state = AP_MPMQ_STOPPING;
    if (reason != APR_OC_REASON_DEATH && reason != APR_OC_REASON_LOST)
        return;                       /* RESTART, RUNNING, UNREGISTER: nothing to do */
    apr_proc_other_child_unregister(m);
    describe_exit(how, sizeof how, reason, status);
    m->proc.pid = 0;
    close(m->parent_fd), m->parent_fd = -1;
    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    if (m->retired || state == AP_MPMQ_STOPPING) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf, PREFIX "daemon group '%s' "
                     "master (pid %ld) %s", m->name, (long)pid, how);
        if (m->retired)
            drop(m);
        return;
    }
    m->delay = lived >= YOUNG ? 0 : !m->delay ? 1 : m->delay * 2 > MAX_DELAY ? MAX_DELAY
             : m->delay * 2;
    if (m->delay)
        snprintf(again, sizeof again, " in %d s, as it ran for less than %d s", m->delay,
                 (int)apr_time_sec(YOUNG));
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ap_server_conf, PREFIX "daemon group '%s' master "
                 "(pid %ld) %s; starting it again%s", m->name, (long)pid, how, again);
    if (start_master(m) == OK)
        watch(m);
}

/* A new record for g's master (not started yet), at the end of the list. */
static master *new_master(apr_pool_t *process_pool, wd_group *g)
{
    master *m, **end = &kept->masters;
    apr_pool_t *p;
    int i;
    apr_pool_create(&p, process_pool);
    m = apr_pcalloc(p, sizeof *m);
    m->pool = p, m->name = apr_pstrdup(p, g->daemon.name), m->parent_fd = -1, m->seen = 1;
    m->argc = g->argv->nelts, m->argv = apr_palloc(p, m->argc * sizeof *m->argv);
    for (i = 0; i < m->argc; i++)
        m->argv[i] = apr_pstrdup(p, APR_ARRAY_IDX(g->argv, i, const char *));
    while (*end)
        end = &(*end)->next;
    return *end = m;
}

/* Whether m runs g's command line as this configuration writes it. */
static int same_command(const master *m, const wd_group *g)
{
    int i;
    if (m->argc != g->argv->nelts)
        return 0;
    for (i = 0; i < m->argc && !strcmp(m->argv[i], APR_ARRAY_IDX(g->argv, i, const char *)); i++)
        ;
    return i == m->argc;
}

/* SIGTERM the running masters of group name that an earlier restart already replaced: a
 * master replaced twice (or whose group is gone) is not waited for. */
static void stop_retired(const char *name)
{
    master *m;
    for (m = kept->masters; m; m = m->next)
        if (m->retired && m->proc.pid && !strcmp(m->name, name))
            kill(m->proc.pid, SIGTERM);
}

/* Make the masters match this generation's groups: keep those whose command line is the same,
 * start new ones, replace changed ones (--takeover-pid), stop removed ones; then watch every
 * running master and hand this generation's error log to those started before it (retired
 * ones too: they still log while they finish). On a restart a new or changed group is
 * checked first, and one that fails the check keeps its running master. */
static void reconcile(apr_pool_t *ptemp, server_rec *main, int restarting)
{
    master *m, *old, *next;
    wd_group *g;
    int i;
    for (m = kept->masters; m; m = m->next)
        m->seen = 0;
    for (i = 0; i < groups->nelts; i++) {
        g = APR_ARRAY_IDX(groups, i, wd_group *);
        for (old = kept->masters; old && (old->retired || strcmp(old->name, g->daemon.name));)
            old = old->next;
        if (old)
            old->seen = 1;
        if (old && same_command(old, g)) {
            if (old->proc.pid)
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, g->server, PREFIX "daemon group '%s' "
                             "is unchanged: its master (pid %ld) goes on", g->daemon.name,
                             (long)old->proc.pid);
            else
                start_master(old);
            continue;
        }
        if (restarting && check_group(ptemp, g->server, g, 0) != OK) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, g->server, PREFIX "daemon group '%s' %s",
                         g->daemon.name, old ? "keeps its master with the previous configuration"
                         : "is not started");
            continue;
        }
        m = new_master(main->process->pool, g);
        if (old) {
            stop_retired(old->name);
            old->retired = 1, m->takeover = old->proc.pid;
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, g->server, PREFIX "daemon group '%s' has "
                         "changed: a new master takes over from pid %ld", g->daemon.name,
                         (long)old->proc.pid);
        }
        start_master(m);
    }
    for (m = kept->masters; m; m = next) {
        next = m->next;
        if (!m->retired && !m->seen) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, main, PREFIX "daemon group '%s' was removed "
                         "from the configuration: stopping its master (pid %ld)", m->name,
                         (long)m->proc.pid);
            stop_retired(m->name);
            m->retired = 1;
            if (m->proc.pid)
                kill(m->proc.pid, SIGTERM);
        }
        if (m->proc.pid && m->log_gen != ap_state_query(AP_SQ_CONFIG_GEN))
            send_log(m);
        if (m->proc.pid)
            watch(m);
        else if (m->retired)
            drop(m);
    }
}

/* When Apache exits (not when it restarts), SIGTERM every master without waiting for it. */
static apr_status_t stop_masters(void *data)
{
    master *m;
    if (!kept || kept->parent != getpid() || ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;
    for (m = kept->masters; m; m = m->next)
        if (m->proc.pid) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf, PREFIX "Apache is stopping: "
                         "SIGTERM to the master of daemon group '%s' (pid %ld)", m->name,
                         (long)m->proc.pid);
            kill(m->proc.pid, SIGTERM);
        }
    return APR_SUCCESS;
}

/* Each configuration pass starts with no groups and no settings. */
static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    daemons = apr_hash_make(pconf);
    groups = apr_array_make(pconf, 4, sizeof(wd_group *));
    imports = apr_array_make(pconf, 4, sizeof(wd_import));
    socket_prefix = python_home = python_path = NULL;
    return OK;
}

/* configtest (-t): check every group the way a start does. This is the check_config hook
 * rather than test_config, which cannot fail: here a failure makes httpd -t exit non-zero. */
static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    const char *err;
    if (ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_CONFIG_TEST)
        return OK;
    if ((err = prepare(pconf, s, 0))) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, PREFIX "%s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return check_all(ptemp, s);
}

/* First pass of a start: check every group. Later passes (the start proper, and every
 * restart): start, keep, replace and stop masters. */
static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int first = ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG;
    const char *err;
    if (ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_NORMAL)
        return OK;
    if ((err = prepare(pconf, s, !first))) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, PREFIX "%s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (first)
        return check_all(ptemp, s);
    if (python_path)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, PREFIX "WSGIPythonPath has no effect: there "
                     "is no embedded interpreter; give daemon groups python-path= instead");
    generation = pconf;
    if (!(kept = ap_retained_data_get(KEPT_KEY))) {
        kept = ap_retained_data_create(KEPT_KEY, sizeof *kept);
        kept->parent = getpid();
    }
    reconcile(ptemp, s, ap_state_query(AP_SQ_CONFIG_GEN) > 1);
    apr_pool_cleanup_register(pconf, NULL, stop_masters, apr_pool_cleanup_null);
    return OK;
}

/* Apache's children must not hold the masters' sockets open, or the masters would not see
 * Apache go. */
static void child_init(apr_pool_t *p, server_rec *s)
{
    master *m;
    for (m = kept ? kept->masters : NULL; m; m = m->next)
        if (m->parent_fd >= 0)
            close(m->parent_fd), m->parent_fd = -1;
}

/* Start masters last, after modules that fork helpers of their own (mod_cgid's daemon) on a
 * first start, so those do not inherit the sockets either. */
void wd_register_daemon_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
}
