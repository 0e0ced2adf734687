/*
 * daemons.h: what the two halves of mod_wsgidaemon share. mod_wsgidaemon.c is the request
 * path (URL mapping, the wire protocol to a daemon group); daemons.c manages the daemon
 * groups Apache starts itself (docs/apache-managed.md) and knows every group by name. The
 * configuration records below are read by both: the request path routes with them, the
 * process management reads the script aliases to decide what to start and preload.
 */
#ifndef WSGIDAEMON_DAEMONS_H
#define WSGIDAEMON_DAEMONS_H

#include "httpd.h"
#include "http_config.h"

#define PREFIX         "mod_wsgidaemon: "
#define IMPLICIT_GROUP "wsgidaemon-default"  /* serves aliases that name no process group */

typedef struct {                      /* a daemon group as the request path sees it */
    const char *name, *path;          /* path: its Unix socket */
    apr_interval_time_t connect_timeout, socket_timeout;  /* socket 0: Apache's Timeout */
    int processes;                    /* bounds the resend attempts: 2 x processes + 1 */
    int managed;                      /* started by this Apache: its socket may not exist yet */
} wd_daemon;

typedef struct {                      /* WSGIScriptAlias(Match) and its options */
    const char *url, *script, *process_group, *application_group, *callable_object;
    const char *where;                /* FILE:LINE of the directive */
    ap_regex_t *regex;
    int pass_authorization;
} wd_alias;

typedef struct {                      /* per server: aliases, a vhost's own first */
    apr_array_header_t *aliases;
} wd_server;

typedef struct {                      /* per directory; NULL or -1 when not set */
    const char *process_group, *application_group, *callable_object;
    const char *trusted_proxies, *trusted_proxy_headers;  /* space-separated */
    int pass_authorization, chunked_request, error_override, script_reloading, map_head;
} wd_dir;

enum { MAP_HEAD_OFF, MAP_HEAD_ON, MAP_HEAD_AUTO };

extern module AP_MODULE_DECLARE_DATA wsgidaemon_module;

/* The daemon group called name (WSGIDaemonSocket or WSGIDaemonProcess), or NULL. */
wd_daemon *wd_find_daemon(const char *name);

/* The value of a key=value option when arg starts with key=, else NULL. */
const char *wd_option(const char *arg, const char *key);

/* A WSGIScriptAlias(Match) naming both groups: its script is preloaded by the group's workers
 * (as mod_wsgi does) unless a group is chosen per request or the target has $n in it. */
void wd_note_preload(cmd_parms *cmd, const wd_alias *alias);

/* Directives handled in daemons.c. */
const char *wd_set_daemon_socket(cmd_parms *cmd, void *dummy, int argc, char *const argv[]);
const char *wd_set_daemon_process(cmd_parms *cmd, void *dummy, const char *args);
const char *wd_set_import_script(cmd_parms *cmd, void *dummy, const char *args);
const char *wd_set_server_path(cmd_parms *cmd, void *dummy, const char *arg);
const char *wd_set_restrict_embedded(cmd_parms *cmd, void *dummy, int flag);

/* Their entries in the module's directive table. */
#define DAEMON_COMMANDS \
    AP_INIT_TAKE_ARGV("WSGIDaemonSocket", wd_set_daemon_socket, NULL, RSRC_CONF, \
                      "a daemon group run outside Apache: name, socket, options"), \
    AP_INIT_RAW_ARGS("WSGIDaemonProcess", wd_set_daemon_process, NULL, RSRC_CONF, \
                     "a daemon group Apache starts: name, options"), \
    AP_INIT_RAW_ARGS("WSGIImportScript", wd_set_import_script, NULL, RSRC_CONF, \
                     "script, process-group=, application-group="), \
    AP_INIT_TAKE1("WSGISocketPrefix", wd_set_server_path, NULL, RSRC_CONF, "socket path prefix"), \
    AP_INIT_TAKE1("WSGIPythonHome", wd_set_server_path, NULL, RSRC_CONF, "default python-home="), \
    AP_INIT_TAKE1("WSGIPythonPath", wd_set_server_path, NULL, RSRC_CONF, \
                  "accepted, no effect: daemon groups take python-path="), \
    AP_INIT_FLAG("WSGIRestrictEmbedded", wd_set_restrict_embedded, NULL, RSRC_CONF, \
                 "accepted, no effect: there is no embedded mode")

/* directives.c: the module's directive table and its configuration records. */
extern const command_rec wd_commands[];
void *wd_create_dir(apr_pool_t *p, char *dir);
void *wd_merge_dir(apr_pool_t *p, void *base, void *add);
void *wd_create_server(apr_pool_t *p, server_rec *s);
void *wd_merge_server(apr_pool_t *p, void *base, void *add);

/* Hooks of daemons.c: configuration check, starting, supervising and stopping masters. */
void wd_register_daemon_hooks(apr_pool_t *p);

#endif
