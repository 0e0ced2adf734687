/*
 * mod_wsgidaemon.c: the Apache side of wsgidaemon ("the shim"). Maps URLs to (daemon group,
 * WSGI script) as mod_wsgi does, connects to the group's Unix socket and speaks
 * docs/wire-protocol.md (codec: wire.h): environment and request body go out as frames while
 * the framed response streams back to the client, both at once. Links only Apache and APR.
 * Log lines keep mod_wsgi's phrases behind a fixed prefix and name the group and the script.
 * The daemon groups themselves, and the masters Apache starts for them, are daemons.c's;
 * the directives and configuration records are directives.c's.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_script.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemons.h"
#include "wire.h"

#define WD_AGAIN  (-1000)             /* the daemon answered RETRY: connect again */
#define WD_STALE  (-1001)             /* GOAWAY, then closed: the request was never read */
#define READ_SIZE 65536               /* request body read from the client at a time */
#define POOL_SIZE 64                  /* idle daemon connections kept per Apache child */
#define POOL_IDLE apr_time_from_sec(15)
/* Log about request q: the first %s in fmt is its daemon group; its script is appended. */
#define LOG(q, level, rv, fmt, ...) \
    ap_log_rerror(APLOG_MARK, level, rv, (q)->r, PREFIX fmt ": %s", (q)->group, ##__VA_ARGS__, \
                  (q)->r->filename)

APLOG_USE_MODULE(wsgidaemon);

enum { STREAM, REDIRECT, OVERRIDE };  /* what becomes of the response body */

typedef struct {                      /* one request on its way through a daemon connection */
    request_rec *r;
    wd_daemon *daemon;
    const char *group;
    apr_interval_time_t timeout;
    int fd, large, bodyless, attempts, error_override, mode;
    unsigned char *out, *in;          /* frames to send (kept for replay until confirmed), read */
    apr_size_t out_len, out_sent, out_cap, in_len, in_cap;
    apr_off_t body_sent;
    wd_shim_state st;                 /* what the daemon has said so far */
    int confirmed, dirty, req_done, resp_done, wclosed, broken;
    apr_bucket_brigade *bb, *bbin;
} wd_req;

static struct { const char *path; int fd; apr_time_t since; } idle[POOL_SIZE];
static int idle_count;
static apr_thread_mutex_t *idle_lock;
/* Environment values that never change in a child: made once in child_init, not per request
 * (getpid() is a system call; glibc no longer caches it). */
static const char *server_pid, *apache_version;

/* Length of the URI prefix an alias matches (a run of '/' matches one), or 0 (mod_alias). */
static apr_size_t alias_matches(const char *uri, const char *alias)
{
    const char *a = alias, *u = uri;
    while (*a) {
        if (*a == '/') {
            if (*u != '/')
                return 0;
            while (*a == '/')
                a++;
            while (*u == '/')
                u++;
        }
        else if (*u++ != *a++)
            return 0;
    }
    return a[-1] != '/' && *u && *u != '/' ? 0 : (apr_size_t)(u - uri);
}

/* Map a URL under a WSGIScriptAlias to its script; the first matching alias wins. */
static int wd_translate(request_rec *r)
{
    wd_server *s = ap_get_module_config(r->server->module_config, &wsgidaemon_module);
    wd_alias *a = (wd_alias *)s->aliases->elts, *end = a + s->aliases->nelts;
    ap_regmatch_t m[AP_MAX_REG_MATCH];
    const char *script = NULL;
    apr_size_t n = 0;
    if (r->uri[0] != '/')
        return DECLINED;
    for (; a < end && !n; a++) {
        if (a->regex && !ap_regexec(a->regex, r->uri, AP_MAX_REG_MATCH, m, 0) && m[0].rm_eo > 0)
            n = m[0].rm_eo, script = ap_pregsub(r->pool, a->script, r->uri, AP_MAX_REG_MATCH, m);
        else if (!a->regex && (n = alias_matches(r->uri, a->url)))
            script = a->script;
    }
    if (!n || !script)
        return DECLINED;
    r->filename = apr_pstrcat(r->pool, script, strcmp(a[-1].url, "/") ? r->uri + n : r->uri, NULL);
    r->handler = "wsgi-script";
    apr_table_setn(r->notes, "alias-forced-type", r->handler);
    ap_set_module_config(r->request_config, &wsgidaemon_module, a - 1);
    return OK;
}

/* A group name with %{GLOBAL}, %{SERVER} and %{RESOURCE} expanded as mod_wsgi does. A plain
 * name, the common case, returns before any host:port string is built. */
static const char *expand(request_rec *r, const char *s)
{
    const char *host = r->server->server_hostname;
    apr_port_t port;
    int server = !strcmp(s, "%{SERVER}");
    if (!strcmp(s, "%{GLOBAL}"))
        return "";
    if (!server && strcmp(s, "%{RESOURCE}"))
        return s;
    port = ap_get_server_port(r);
    if (port != DEFAULT_HTTP_PORT && port != DEFAULT_HTTPS_PORT)
        host = apr_pstrcat(r->pool, host, ":", apr_itoa(r->pool, port), NULL);
    return server ? host : apr_pstrcat(r->pool, host, "|", apr_table_get(r->subprocess_env,
                                                                           "SCRIPT_NAME"), NULL);
}

/* The Request-URI as the client wrote it: the request line's second word, or "" without a
 * request line (what Apache's util_script.c uses for REQUEST_URI by default). */
static const char *request_line_uri(request_rec *r)
{
    const char *first = r->the_request, *last;
    if (!first)
        return "";
    while (*first && !apr_isspace(*first))
        first++;                      /* the method */
    while (apr_isspace(*first))
        first++;
    for (last = first; *last && !apr_isspace(*last); last++)
        ;
    return apr_pstrmemdup(r->pool, first, (apr_size_t)(last - first));
}

/* True when `CGIVar REQUEST_URI current-uri` applies: REQUEST_URI is then r->uri. */
static int request_uri_is_current(request_rec *r)
{
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 58)  /* CGIVar came with 2.4.21 */
    core_dir_config *conf = ap_get_core_module_config(r->per_dir_config);
    const char *rule = conf->cgi_var_rules ? apr_hash_get(conf->cgi_var_rules, "REQUEST_URI",
                                                          APR_HASH_KEY_STRING) : NULL;
    return rule && !strcmp(rule, "current-uri");
#else
    return 0;
#endif
}

/* What ap_add_cgi_vars() sets, in its order, less GATEWAY_INTERFACE and PATH_TRANSLATED, which
 * mod_wsgi 6 leaves out anyway: for a request with PATH_INFO, Apache computes PATH_TRANSLATED
 * with a whole sub-request (a URI-to-file walk: several stat() and .htaccess open() calls). */
static void add_cgi_vars(request_rec *r)
{
    apr_table_t *e = r->subprocess_env;
    int path_info = r->path_info && *r->path_info;
    apr_table_setn(e, "SERVER_PROTOCOL", r->protocol);
    apr_table_setn(e, "REQUEST_METHOD", r->method);
    apr_table_setn(e, "QUERY_STRING", r->args ? r->args : "");
    apr_table_setn(e, "REQUEST_URI", request_uri_is_current(r) ? r->uri : request_line_uri(r));
    /* SCRIPT_NAME is the URI less the part PATH_INFO matches, except for a script that
     * mod_include runs ("INCLUDED"): its sub-request carries the including page's path info,
     * which is not part of its own URI. */
    if (path_info && strcmp(r->protocol, "INCLUDED"))
        apr_table_setn(e, "SCRIPT_NAME", apr_pstrndup(r->pool, r->uri,
                                                      ap_find_path_info(r->uri, r->path_info)));
    else
        apr_table_setn(e, "SCRIPT_NAME", r->uri);
    if (path_info)
        apr_table_setn(e, "PATH_INFO", r->path_info);
}

/* Apache's CGI variables with mod_wsgi's adjustments, and the routing and timing keys. */
static void build_env(wd_req *q, wd_alias *a, wd_dir *d)
{
    static const char *const dropped[] = {"GATEWAY_INTERFACE", "PATH_TRANSLATED", "PATH",
        "SERVER_SIGNATURE", "REMOTE_HOST", "REMOTE_IDENT", "LD_LIBRARY_PATH", NULL};
    static const char *const paths[] = {"SCRIPT_NAME", "PATH_INFO"};
    request_rec *r = q->r;
    conn_rec *c = r->connection;
    apr_table_t *e = r->subprocess_env;
    const char *auth = apr_table_get(r->headers_in, "Authorization"), *v;
    char *path;
    int i;
#define SET(key, value) apr_table_setn(e, "mod_wsgi." key, value)
    ap_add_common_vars(r);
    add_cgi_vars(r);
    for (i = 0; dropped[i]; i++)      /* what mod_wsgi 6 leaves out, even when set by SetEnv */
        apr_table_unset(e, dropped[i]);
    if (r->header_only && d->map_head == MAP_HEAD_ON)  /* Apache still drops the body */
        apr_table_setn(e, "REQUEST_METHOD", "GET");
    for (i = 0; i < 2; i++) {         /* always present, runs of '/' collapsed, copied */
        ap_no2slash(path = apr_pstrdup(r->pool, (v = apr_table_get(e, paths[i])) ? v : ""));
        apr_table_setn(e, paths[i], path);
        apr_table_setn(e, i ? "mod_wsgi.path_info" : "mod_wsgi.script_name", path);
    }
    if (auth && (a && a->pass_authorization != -1 ? a->pass_authorization
                                                  : d->pass_authorization == 1))
        apr_table_setn(e, "HTTP_AUTHORIZATION", auth);
    if (ap_ssl_conn_is_ssl(c))
        apr_table_setn(e, "HTTPS", "1");
#define PICK(field, dflt) (a && a->field ? a->field : d->field ? d->field : dflt)
    q->group = expand(r, PICK(process_group, ""));  /* none, or %{GLOBAL}: the implicit group */
    SET("process_group", q->group = *q->group ? q->group : IMPLICIT_GROUP);
    SET("application_group", expand(r, PICK(application_group, "%{RESOURCE}")));
    SET("callable_object", PICK(callable_object, "application"));
    SET("handler_script", "");
    SET("request_handler", r->handler);
    SET("script_reloading", d->script_reloading == 0 ? "0" : "1");
    if (d->script_reloading != 0 && r->finfo.filetype == APR_REG)  /* Apache stat()ed it */
        SET("script_mtime", apr_psprintf(r->pool, "%" APR_TIME_T_FMT, r->finfo.mtime));
    if (d->trusted_proxies)           /* the daemon applies them */
        SET("trusted_proxies", d->trusted_proxies);
    if (d->trusted_proxy_headers)
        SET("trusted_proxy_headers", d->trusted_proxy_headers);
    SET("request_start", apr_psprintf(r->pool, "%" APR_TIME_T_FMT, r->request_time));
    if (!r->log_id)
        ap_run_generate_log_id(c, r, &r->log_id);
    if (r->log_id)
        SET("request_id", r->log_id);
    if (c->log_id)
        SET("connection_id", c->log_id);
    SET("listener_host", c->local_addr->hostname ? c->local_addr->hostname : "");
    SET("listener_port", apr_itoa(r->pool, c->local_addr->port));
    SET("server_pid", server_pid);
    SET("apache_version", apache_version);
}

/* Encode REQUEST_HEAD (the environment) as the outbox's first frame: size it, then write it.
 * The outbox has room for the body frames that follow, or without a body only for what
 * queue_end asks for (REQUEST_END, and 4 bytes it keeps for an abort reason's length). */
static void encode_head(wd_req *q)
{
    const apr_array_header_t *arr = apr_table_elts(q->r->subprocess_env);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_size_t room = q->bodyless ? WD_HEADER_SIZE + 4 : 2 * READ_SIZE;
    wd_buf b = {NULL, 0, 0};
    size_t mark;
    int pass, i;
    apr_table_setn(q->r->subprocess_env, "mod_wsgi.queue_start",
                   apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_now()));
    for (pass = 0; pass < 2; pass++) {
        if (pass)
            b.p = q->out = apr_palloc(q->r->pool, q->out_cap = b.cap = b.len + room), b.len = 0;
        mark = wd_begin_frame(&b, WD_REQUEST_HEAD);
        wd_put_request_head(&b, q->large ? WD_LARGE_BODY : 0, (uint32_t)arr->nelts);
        for (i = 0; i < arr->nelts; i++)
            wd_put_env_pair(&b, e[i].key, e[i].val ? e[i].val : "");
        wd_end_frame(&b, mark);
    }
    q->out_len = b.len;
}

/* Remove an idle connection to path from the pool and return it with the time it went idle,
 * or -1. Only the array is touched under idle_lock: every thread of the child shares it. */
static int pool_pop(const char *path, apr_time_t *since)
{
    int i, fd = -1;
    apr_thread_mutex_lock(idle_lock);
    for (i = idle_count - 1; i >= 0; i--)
        if (!strcmp(idle[i].path, path)) {
            fd = idle[i].fd, *since = idle[i].since;
            idle[i] = idle[--idle_count];
            break;
        }
    apr_thread_mutex_unlock(idle_lock);
    return fd;
}

/* Take an idle connection to path on which nothing waits to be read (GOAWAY, EOF), or -1.
 * The check and closing a stale one are system calls, so they happen outside the lock. */
static int pool_take(const char *path)
{
    apr_time_t now = apr_time_now(), since = 0;
    struct pollfd p = {-1, POLLIN, 0};
    while ((p.fd = pool_pop(path, &since)) >= 0) {
        if (now - since <= POOL_IDLE && poll(&p, 1, 0) == 0)
            return p.fd;
        close(p.fd);                  /* too old, or the daemon said GOAWAY or closed it */
    }
    return -1;
}

/* Keep a connection for a later request, closing those idle for too long. */
static void pool_give(const char *path, int fd)
{
    apr_time_t now = apr_time_now();
    int i;
    apr_thread_mutex_lock(idle_lock);
    for (i = idle_count - 1; i >= 0; i--)
        if (now - idle[i].since > POOL_IDLE)
            close(idle[i].fd), idle[i] = idle[--idle_count];
    if (idle_count < POOL_SIZE)
        idle[idle_count].path = path, idle[idle_count].fd = fd, idle[idle_count++].since = now;
    else
        close(fd);
    apr_thread_mutex_unlock(idle_lock);
}

/* Connect to the group's socket, retrying while the listener is missing or full (mod_wsgi). */
static int connect_daemon(wd_req *q)
{
    struct sockaddr_un sa = {AF_UNIX};
    apr_time_t start = apr_time_now(), slept = 0, step;
    int err, busy;
    apr_cpystrn(sa.sun_path, q->daemon->path, sizeof sa.sun_path);
    for (;;) {
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (q->fd >= 0 && !connect(q->fd, (struct sockaddr *)&sa, sizeof sa))
            return OK;
        /* A group this Apache starts may not have bound its socket yet: wait for it too. */
        err = errno;
        busy = err == ECONNREFUSED || err == EAGAIN || (err == ENOENT && q->daemon->managed);
        if (q->fd >= 0)
            close(q->fd), q->fd = -1;
        if (!busy || apr_time_now() - start >= q->daemon->connect_timeout) {
            LOG(q, APLOG_ERR, APR_FROM_OS_ERROR(err), "Unable to connect to WSGI daemon process "
                "'%s' on '%s' %s", q->daemon->path, busy ? "after multiple attempts as listener "
                "backlog limit was exceeded or the socket does not exist" :
                apr_psprintf(q->r->pool, "as user with uid=%ld", (long)geteuid()));
            return HTTP_SERVICE_UNAVAILABLE;
        }
        step = slept < apr_time_from_sec(2) ? apr_time_from_msec(125) : apr_time_from_sec(1);
        apr_sleep(step);
        slept += step;
    }
}

/* Pool the connection when both sides finished the request cleanly, else close it. */
static void release(wd_req *q)
{
    if (q->fd >= 0 && q->resp_done && q->req_done && !q->broken && !q->st.goaway &&
        !q->wclosed && q->out_sent == q->out_len && !q->in_len)
        pool_give(q->daemon->path, q->fd);
    else if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
}

/* Room for n more outbox bytes, dropping what the daemon has read once it is confirmed. */
static wd_buf outbox(wd_req *q, apr_size_t n)
{
    wd_buf b;
    unsigned char *p;
    if (q->confirmed && q->out_sent) {
        memmove(q->out, q->out + q->out_sent, q->out_len - q->out_sent);
        q->out_len -= q->out_sent, q->out_sent = 0;
    }
    if (q->out_len + n > q->out_cap) {
        p = apr_palloc(q->r->pool, q->out_cap = 2 * (q->out_len + n));
        memcpy(p, q->out, q->out_len);
        q->out = p;
    }
    b.p = q->out, b.cap = q->out_cap, b.len = q->out_len;
    return b;
}

/* Queue REQUEST_END, or REQUEST_ABORT with its reason: the request side is done. */
static void queue_end(wd_req *q, const char *abort_reason)
{
    apr_size_t n = abort_reason ? strlen(abort_reason) : 0;
    wd_buf b = outbox(q, WD_HEADER_SIZE + 4 + n);
    size_t mark = wd_begin_frame(&b, abort_reason ? WD_REQUEST_ABORT : WD_REQUEST_END);
    if (abort_reason)
        wd_put_str(&b, abort_reason, (uint32_t)n);
    wd_end_frame(&b, mark);
    q->out_len = b.len, q->req_done = 1;
}

/* True when the next step is reading request body: outbox sent, within the window (a body
 * without LARGE_BODY is bounded by its Content-Length and fits in the window). */
static int want_client(wd_req *q)
{
    return !q->req_done && !q->wclosed && q->out_sent == q->out_len &&
           (q->confirmed || !q->large || q->body_sent < WD_EAGER_WINDOW);
}

/* Read the next piece of request body from the client straight into a frame in the outbox. */
static int read_client(wd_req *q)
{
    apr_size_t len = READ_SIZE;
    apr_status_t rv;
    wd_buf b;
    size_t mark;
    int eos;
    if (q->large && !q->confirmed && len > WD_EAGER_WINDOW - q->body_sent)
        len = (apr_size_t)(WD_EAGER_WINDOW - q->body_sent);
    rv = ap_get_brigade(q->r->input_filters, q->bbin, AP_MODE_READBYTES, APR_BLOCK_READ, len);
    eos = !APR_BRIGADE_EMPTY(q->bbin) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(q->bbin));
    b = outbox(q, WD_HEADER_SIZE + len);
    mark = wd_begin_frame(&b, WD_REQUEST_BODY);
    if (rv == APR_SUCCESS)
        rv = apr_brigade_flatten(q->bbin, (char *)b.p + b.len, &len);
    apr_brigade_cleanup(q->bbin);
    if (rv != APR_SUCCESS) {
        LOG(q, APLOG_ERR, rv, "Unable to read the request body from the client for daemon "
            "process '%s'");
        if (!q->st.head)
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        queue_end(q, "the request body could not be read from the client");
        return OK;
    }
    if (len) {
        b.len += len;
        wd_end_frame(&b, mark);
        q->out_len = b.len, q->body_sent += len;
    }
    if (eos)
        queue_end(q, NULL);
    return OK;
}

/* Write as much of the outbox as the daemon takes now; after a write error, keep reading:
 * the daemon may have said why (GOAWAY, ERROR). */
static void send_out(wd_req *q)
{
    ssize_t n = send(q->fd, q->out + q->out_sent, q->out_len - q->out_sent, MSG_NOSIGNAL);
    if (n >= 0)
        q->out_sent += (apr_size_t)n;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        q->wclosed = 1;
}

/* Pass the response bytes of one read to the client with a flush (or the end of stream). */
static void pass_batch(wd_req *q)
{
    apr_status_t rv;
    if (!q->dirty || q->mode != STREAM)
        return;
    if (!q->resp_done)
        APR_BRIGADE_INSERT_TAIL(q->bb, apr_bucket_flush_create(q->r->connection->bucket_alloc));
    rv = ap_pass_brigade(q->r->output_filters, q->bb);
    apr_brigade_cleanup(q->bb);
    q->dirty = 0;
    if (rv != APR_SUCCESS) {
        LOG(q, APLOG_DEBUG, rv, "Client went away while receiving the response from daemon "
            "process '%s'");
        q->broken = q->resp_done = 1;
    }
}

/* The daemon broke the exchange: 502 before the response head, an aborted client after it
 * (no last chunk, or fewer bytes than the Content-Length, then the connection closes). */
static int broken(wd_req *q, const char *why)
{
    conn_rec *c = q->r->connection;
    q->broken = 1;
    if (!q->st.head) {
        LOG(q, APLOG_ERR, 0, "Daemon process '%s' closed connection before sending complete "
            "response headers%s%s%s", why ? " (" : "", why ? why : "", why ? ")" : "");
        return HTTP_BAD_GATEWAY;
    }
    LOG(q, APLOG_ERR, 0, "Response from daemon process '%s' was cut short (%s), aborting the "
        "client connection", why ? why : "connection closed");
    if (!q->resp_done && q->mode == STREAM) {
        pass_batch(q);                /* first what came before the fault, head included */
        APR_BRIGADE_INSERT_TAIL(q->bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, q->r->pool,
                                                              c->bucket_alloc));
        APR_BRIGADE_INSERT_TAIL(q->bb, apr_bucket_eos_create(c->bucket_alloc));
        ap_pass_brigade(q->r->output_filters, q->bb);
        apr_brigade_cleanup(q->bb);
        c->aborted = 1;
    }
    q->resp_done = 1, q->dirty = 0;
    return OK;
}

/* Why the two ends cannot talk: they speak different protocol versions. */
static const char *version_mismatch(wd_req *q, unsigned version)
{
    return apr_psprintf(q->r->pool, "the Apache module speaks wire protocol %d, this daemon speaks "
                        "%u: upgrade the older of the two so that they match", WD_VERSION, version);
}

/* Put one response header where Apache wants it. */
static void add_header(request_rec *r, const wd_str *name, const wd_str *value)
{
    const char *n = apr_pstrmemdup(r->pool, (const char *)name->data, name->len);
    char *v = apr_pstrmemdup(r->pool, (const char *)value->data, value->len);
    if (!strcasecmp(n, "Content-Type"))
        ap_content_type_tolower(v), ap_set_content_type(r, v);
    else if (!strcasecmp(n, "WWW-Authenticate"))
        apr_table_addn(r->err_headers_out, n, v);
    else if (!strcasecmp(n, "Set-Cookie"))
        apr_table_addn(r->headers_out, n, v);
    else if (strcasecmp(n, "Transfer-Encoding"))  /* Apache frames the body itself */
        apr_table_mergen(r->headers_out, n, v);
}

/* RESPONSE_HEAD: check it whole, then set status and headers and choose the body's fate. */
static int on_head(wd_req *q, wd_cursor *c)
{
    request_rec *r = q->r;
    uint16_t version, status;
    uint32_t count, i;
    wd_str line, name, value;
    wd_cursor pairs;
    const char *location;
    if (wd_get_response_head(c, &version, &status, &line, &count) == WD_ERR_BAD_VERSION)
        return broken(q, version_mismatch(q, version));
    for (pairs = *c, i = 0; i < count && !wd_get_pair(c, &name, &value); i++)
        ;                             /* Apache itself refuses bad header names and values */
    if (!wd_get_end(c) && (memchr(line.data, '\r', line.len) || memchr(line.data, '\n', line.len)))
        wd_fail(c, WD_ERR_MALFORMED, "a status line with CR or LF");
    if (c->code)
        return broken(q, apr_pstrcat(r->pool, "malformed RESPONSE_HEAD: ", c->error, NULL));
    for (i = 0; i < count && !wd_get_pair(&pairs, &name, &value); i++)
        add_header(r, &name, &value);
    r->status = status;
    r->status_line = line.len ? apr_pstrmemdup(r->pool, (const char *)line.data, line.len) : NULL;
    location = apr_table_get(r->headers_out, "Location");
    q->mode = location && location[0] == '/' && status == HTTP_OK ? REDIRECT
            : q->error_override && ap_is_HTTP_ERROR(status) ? OVERRIDE : STREAM;
    q->confirmed = q->dirty = 1;
    return OK;
}

/* Act on one frame from the daemon: OK, WD_AGAIN, or a status for the client. */
static int on_frame(wd_req *q, const wd_header *h, const unsigned char *p)
{
    apr_bucket_alloc_t *ba = q->r->connection->bucket_alloc;
    uint16_t a = 0, b = 0;
    wd_str s = {NULL, 0};
    const char *text;
    wd_cursor c;
    wd_cursor_init(&c, p, h->length);
    if (h->type == WD_RETRY ? wd_get_retry(&c, &a, &b, &s) : h->type == WD_ERROR ?
        wd_get_error(&c, &a, &b, &s) : h->type == WD_RESPONSE_END ?
        wd_get_response_end(&c, &a, &s, q->st.head) : 0)
        return broken(q, apr_psprintf(q->r->pool, "malformed %s: %s", wd_type_name(h->type),
                                      c.error));
    text = apr_pstrmemdup(q->r->pool, (const char *)s.data, s.len);  /* the log escapes it */
    switch (h->type) {
    case WD_START:
        q->confirmed = 1;
        break;
    case WD_RETRY:
        q->attempts = b;
        LOG(q, APLOG_INFO, 0, "Daemon process '%s' asked for the request to be sent again "
            "(%s%s%s)", wd_retry_name(a), *text ? ": " : "", text);
        return WD_AGAIN;
    case WD_ERROR:
        return broken(q, a == WD_ERR_BAD_VERSION ? version_mismatch(q, b) : apr_psprintf(
                      q->r->pool, "ERROR %s: %s", wd_error_name(a), text));
    case WD_RESPONSE_HEAD:
        return on_head(q, &c);
    case WD_RESPONSE_BODY:
        if (q->mode == STREAM)
            APR_BRIGADE_INSERT_TAIL(q->bb, apr_bucket_transient_create((const char *)p, h->length,
                                                                       ba));
        q->dirty = 1;
        break;
    case WD_RESPONSE_END:
        if (a != WD_END_COMPLETE)
            return broken(q, apr_psprintf(q->r->pool, "RESPONSE_END %s%s%s", wd_end_name(a),
                                          *text ? ": " : "", text));
        if (q->mode == STREAM)
            APR_BRIGADE_INSERT_TAIL(q->bb, apr_bucket_eos_create(ba));
        q->resp_done = q->dirty = 1;
    }
    return OK;
}

/* Read what the daemon sent, act on every whole frame in it, then pass it on. */
static int recv_in(wd_req *q)
{
    ssize_t n = read(q->fd, q->in + q->in_len, q->in_cap - q->in_len);
    wd_header h = {0, 0, 0, 0};
    const char *why = "not allowed now";
    apr_size_t at = 0;
    unsigned char *p;
    int rc = OK;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return OK;
    if (n <= 0 && q->st.goaway && !q->confirmed)
        return WD_STALE;              /* closed after GOAWAY: the request was never read */
    if (n <= 0)
        return broken(q, n < 0 ? strerror(errno) : NULL);
    q->in_len += (apr_size_t)n;
    while (rc == OK && !q->resp_done && q->in_len - at >= WD_HEADER_SIZE) {
        wd_header_parse(q->in + at, &h);
        if (wd_header_check(&h, WD_MAX_HEAD, &why) || wd_shim_check(&q->st, h.type))
            return broken(q, apr_psprintf(q->r->pool, "frame type 0x%02x: %s", h.type, why));
        if (q->in_len - at - WD_HEADER_SIZE < h.length)
            break;
        rc = on_frame(q, &h, q->in + at + WD_HEADER_SIZE);
        wd_shim_update(&q->st, h.type);
        at += WD_HEADER_SIZE + h.length;
    }
    if (rc == OK)
        pass_batch(q);
    memmove(q->in, q->in + at, q->in_len -= at);
    if (q->in_len >= WD_HEADER_SIZE && !q->resp_done && WD_HEADER_SIZE + h.length > q->in_cap) {
        p = apr_palloc(q->r->pool, q->in_cap = WD_HEADER_SIZE + h.length);
        memcpy(p, q->in, q->in_len);
        q->in = p;
    }
    return rc;
}

/* One attempt: send the request and relay the response at the same time, until it ends.
 * Sending is tried first: the socket nearly always takes the whole outbox at once, so poll()
 * waits only for what it would not take, and for the daemon's answer. */
static int exchange(wd_req *q)
{
    struct pollfd p;
    int rc = OK, n, wait;
    while (rc == OK && !q->resp_done) {
        if (want_client(q) && (rc = read_client(q)) != OK)
            break;
        if (q->out_sent < q->out_len && !q->wclosed)
            send_out(q);
        p.fd = q->fd, p.revents = 0;
        p.events = POLLIN | (q->out_sent < q->out_len && !q->wclosed ? POLLOUT : 0);
        wait = want_client(q) ? 0 : (int)apr_time_as_msec(q->timeout);
        if ((n = poll(&p, 1, wait)) == 0 && wait && !q->st.head) {
            LOG(q, APLOG_ERR, 0, "Timeout when reading response headers from daemon process "
                "'%s'");
            return HTTP_GATEWAY_TIME_OUT;
        }
        if (n == 0 && wait)
            rc = broken(q, "timeout reading the response body");
        else if (n < 0 && errno != EINTR)
            rc = broken(q, strerror(errno));
        if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))  /* POLLOUT: next turn sends */
            rc = recv_in(q);
    }
    return rc;
}

/* Send the request to the group's daemon and relay its response, connecting again if told. */
static int proxy(wd_req *q)
{
    int rc, retries = 0, pooled;
    for (;;) {                        /* only the first try may use a pooled connection */
        q->fd = q->out ? -1 : pool_take(q->daemon->path);
        if (!(pooled = q->fd >= 0) && (rc = connect_daemon(q)) != OK)
            return rc;
        if (!q->out) {
            encode_head(q);
            if (q->bodyless)          /* HEAD and END leave in one send, reach one read */
                queue_end(q, NULL);
        }
        if ((rc = exchange(q)) != WD_AGAIN && rc != WD_STALE)
            break;
        close(q->fd), q->fd = -1;
        /* RETRY, or GOAWAY and close before the request was read: the app never saw it. A
         * pooled connection may go stale for free; every other try counts, so none loops. */
        if (!(rc == WD_STALE && pooled) && ++retries > q->attempts) {
            LOG(q, APLOG_ERR, 0, "Maximum number of WSGI daemon process '%s' restart attempts "
                "reached: %d", q->attempts);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        q->out_sent = q->in_len = 0, q->wclosed = 0;
        memset(&q->st, 0, sizeof q->st);
    }
    release(q);
    if (rc == OK && q->mode == REDIRECT) {  /* CGI: a local Location with 200 is fetched as GET */
        q->r->method = "GET", q->r->method_number = M_GET;
        apr_table_unset(q->r->headers_in, "Content-Length");
        ap_internal_redirect_handler(apr_table_get(q->r->headers_out, "Location"), q->r);
    }
    else if (rc == OK && q->mode == OVERRIDE) {  /* WSGIErrorOverride: Apache's error page */
        rc = q->r->status;
        q->r->status = HTTP_OK, q->r->status_line = NULL;
    }
    return rc;
}

/* Log why a request is refused before any daemon is involved, and answer status. */
static int refuse(request_rec *r, int status, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, PREFIX "%s: %s", why, r->filename);
    return status;
}

/* Refuse what mod_wsgi refuses before it talks to a daemon. */
static int check_request(request_rec *r, int aliased, wd_dir *d)
{
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");
    if (!aliased && !(ap_allow_options(r) & OPT_EXECCGI))
        return refuse(r, HTTP_FORBIDDEN, "Options ExecCGI is off in this directory");
    if (r->finfo.filetype == APR_NOFILE)
        return refuse(r, HTTP_NOT_FOUND, "Target WSGI script not found or unable to stat");
    if (r->finfo.filetype == APR_DIR)
        return refuse(r, HTTP_FORBIDDEN, "Attempt to invoke directory as WSGI application");
    if (r->used_path_info == AP_REQ_REJECT_PATH_INFO && r->path_info && *r->path_info)
        return refuse(r, HTTP_NOT_FOUND, "AcceptPathInfo off disallows user's path");
    if (te && strcasecmp(te, "chunked"))
        return refuse(r, HTTP_NOT_IMPLEMENTED, "Only 'chunked' Transfer-Encoding is supported");
    if (te && d->chunked_request != 1)
        return refuse(r, HTTP_LENGTH_REQUIRED, "Request requires chunked transfer encoding, but "
                      "support for chunked transfer encoding has not been enabled");
    return OK;
}

/* True when the request has no body and nothing can give it one: no Transfer-Encoding, no
 * Content-Length or a plain zero (anything odder takes the body path, where Apache's HTTP_IN
 * filter judges it), and no input filter above the protocol's (mod_deflate, mod_request's
 * kept body) that could produce bytes. Its REQUEST_END can then go out with the head. */
static int bodyless(request_rec *r, const char *cl)
{
    return !apr_table_get(r->headers_in, "Transfer-Encoding") &&
           (!cl || (*cl && !cl[strspn(cl, "0")])) &&
           r->input_filters->frec->ftype >= AP_FTYPE_PROTOCOL;
}

/* The content handler: wsgi-script requests go to their daemon group. */
static int wd_handler(request_rec *r)
{
    wd_dir *d = ap_get_module_config(r->per_dir_config, &wsgidaemon_module);
    wd_alias *a = ap_get_module_config(r->request_config, &wsgidaemon_module);
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_int64_t length = cl ? apr_atoi64(cl) : 0;
    wd_req *q;
    int rc;
    if (!r->handler || (strcmp(r->handler, "wsgi-script") &&
                        strcmp(r->handler, "application/x-httpd-wsgi")))
        return DECLINED;
    if ((rc = check_request(r, a != NULL, d)) != OK)
        return rc;
    q = apr_pcalloc(r->pool, sizeof *q);
    q->r = r, q->fd = -1, q->error_override = d->error_override == 1;
    build_env(q, a, d);
    if (!(q->daemon = wd_find_daemon(q->group))) {
        LOG(q, APLOG_ERR, 0, "No WSGI daemon process called '%s' has been configured%s",
            strcmp(q->group, IMPLICIT_GROUP) ? "" : " (the implicit group for requests naming "
            "none is started only for a WSGIScriptAlias without process group)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    q->attempts = 2 * q->daemon->processes + 1;  /* as mod_wsgi, until RETRY says more */
    q->timeout = q->daemon->socket_timeout ? q->daemon->socket_timeout : r->server->timeout;
    /* LARGE_BODY when the body may outgrow EAGER_WINDOW: chunked, long, or changed by a filter */
    q->large = apr_table_get(r->headers_in, "Transfer-Encoding") || length > WD_EAGER_WINDOW ||
               (length > 0 && r->input_filters->frec->ftype < AP_FTYPE_PROTOCOL);
    q->bodyless = bodyless(r, cl);
    q->in = apr_palloc(r->pool, q->in_cap = WD_HEADER_SIZE + READ_SIZE);
    q->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    q->bbin = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    return proxy(q);
}

/* Each Apache child keeps its own pool of idle daemon connections (closed when it exits), and
 * makes the environment values that stay the same for all its requests. */
static void child_init(apr_pool_t *p, server_rec *s)
{
    ap_version_t version;
    if (apr_thread_mutex_create(&idle_lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, PREFIX "Unable to create a mutex");
    server_pid = apr_itoa(p, (int)getpid());
    ap_get_server_revision(&version);
    apache_version = apr_psprintf(p, "%d.%d.%d", version.major, version.minor, version.patch);
}

/* Translate after mod_alias (Alias /static beats WSGIScriptAlias /) and before mod_userdir
 * and mod_vhost_alias, exactly as mod_wsgi orders its hook; handle in the middle. */
static void register_hooks(apr_pool_t *p)
{
    static const char *const pre[] = {"mod_alias.c", NULL};
    static const char *const succ[] = {"mod_userdir.c", "mod_vhost_alias.c", NULL};
    ap_hook_translate_name(wd_translate, pre, succ, APR_HOOK_MIDDLE);
    ap_hook_handler(wd_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    wd_register_daemon_hooks(p);
}

module AP_MODULE_DECLARE_DATA wsgidaemon_module = {
    STANDARD20_MODULE_STUFF,
    wd_create_dir,                    /* per-directory config */
    wd_merge_dir,                     /* merge per-directory config */
    wd_create_server,                 /* per-server config */
    wd_merge_server,                  /* merge per-server config */
    wd_commands,                      /* directives: directives.c */
    register_hooks                    /* hooks */
};
