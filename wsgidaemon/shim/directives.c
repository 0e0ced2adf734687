/*
 * directives.c: mod_wsgidaemon's directives and its per-server and per-directory settings,
 * as mod_wsgi spells them. WSGIDaemonProcess and the other daemon-group directives are
 * daemons.c's; this table lists them through DAEMON_COMMANDS.
 */
#include "httpd.h"
#include "http_config.h"
#include "apr_network_io.h"
#include "apr_strings.h"

#include <string.h>
#include <strings.h>

#include "daemons.h"

/* Per-directory settings: nothing set yet. */
void *wd_create_dir(apr_pool_t *p, char *dir)
{
    wd_dir *d = apr_pcalloc(p, sizeof *d);
    d->pass_authorization = d->chunked_request = d->error_override = d->script_reloading = -1;
    d->map_head = -1;
    return d;
}

/* The inner section's settings win where it has them. */
void *wd_merge_dir(apr_pool_t *p, void *base, void *add)
{
    wd_dir *b = base, *a = add, *d = apr_palloc(p, sizeof *d);
#define MERGE(field, unset) d->field = a->field != unset ? a->field : b->field
    MERGE(process_group, NULL), MERGE(application_group, NULL), MERGE(callable_object, NULL);
    MERGE(pass_authorization, -1), MERGE(chunked_request, -1), MERGE(error_override, -1);
    MERGE(script_reloading, -1), MERGE(map_head, -1);
    MERGE(trusted_proxies, NULL), MERGE(trusted_proxy_headers, NULL);
    return d;
}

/* Per-server settings: no aliases (daemon groups are global, kept by daemons.c). */
void *wd_create_server(apr_pool_t *p, server_rec *s)
{
    wd_server *c = apr_palloc(p, sizeof *c);
    c->aliases = apr_array_make(p, 4, sizeof(wd_alias));
    return c;
}

/* A virtual host tries its own aliases first, then the main server's. */
void *wd_merge_server(apr_pool_t *p, void *base, void *add)
{
    wd_server *b = base, *a = add, *c = apr_palloc(p, sizeof *c);
    c->aliases = apr_array_append(p, a->aliases, b->aliases);
    return c;
}

/* WSGIScriptAlias URL-path file [options] and WSGIScriptAliasMatch regex file [options]. */
static const char *set_alias(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    wd_server *s = ap_get_module_config(cmd->server->module_config, &wsgidaemon_module);
    wd_alias *a = apr_array_push(s->aliases);
    const char *v;
    int i;
    if (argc < 2)
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " takes a URL, a script file and options",
                           NULL);
    memset(a, 0, sizeof *a);
    a->url = argv[0], a->script = argv[1], a->pass_authorization = -1;
    a->where = apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                            cmd->directive->line_num);
    if (cmd->info && !(a->regex = ap_pregcomp(cmd->pool, argv[0], AP_REG_EXTENDED)))
        return apr_pstrcat(cmd->pool, "Regular expression could not be compiled: ", argv[0], NULL);
    for (i = 2; i < argc; i++) {
        if ((v = wd_option(argv[i], "process-group")))
            a->process_group = v;
        else if ((v = wd_option(argv[i], "application-group")))
            a->application_group = v;
        else if ((v = wd_option(argv[i], "callable-object")))
            a->callable_object = v;
        else if ((v = wd_option(argv[i], "pass-authorization")) &&
                 (!strcasecmp(v, "On") || !strcasecmp(v, "Off")))
            a->pass_authorization = !strcasecmp(v, "On");
        else
            return apr_pstrcat(cmd->pool, "Invalid option to WSGI script alias definition: ",
                               argv[i], NULL);
    }
    wd_note_preload(cmd, a);
    return NULL;
}

/* WSGIMapHEADToGET Auto|On|Off. On shows a HEAD request to the daemon as GET (Apache still
 * sends no body); Auto leaves HEAD alone, as Off does: no filter of ours needs the body. */
static const char *set_map_head(cmd_parms *cmd, void *conf, const char *arg)
{
    wd_dir *d = conf;
    d->map_head = !strcasecmp(arg, "On") ? MAP_HEAD_ON : !strcasecmp(arg, "Off") ? MAP_HEAD_OFF
                : !strcasecmp(arg, "Auto") ? MAP_HEAD_AUTO : -1;
    return d->map_head < 0 ? "WSGIMapHEADToGET must be Auto, On or Off" : NULL;
}

/* WSGITrustedProxies ADDRESS[/BITS]... and WSGITrustedProxyHeaders NAME...: repeated
 * directives add up; the daemon applies them (mod_wsgi.trusted_proxies, ..._headers). */
static const char *set_trusted(cmd_parms *cmd, void *conf, const char *arg)
{
    wd_dir *d = conf;
    const char **list = cmd->info ? &d->trusted_proxy_headers : &d->trusted_proxies;
    char *ip = apr_pstrdup(cmd->temp_pool, arg), *bits = strchr(ip, '/');
    apr_ipsubnet_t *subnet;
    if (bits)
        *bits++ = '\0';
    if (!cmd->info && apr_ipsubnet_create(&subnet, ip, bits, cmd->temp_pool) != APR_SUCCESS)
        return apr_pstrcat(cmd->pool, "WSGITrustedProxies: not an IP address or ADDRESS/BITS: ",
                           arg, NULL);
    *list = *list ? apr_pstrcat(cmd->pool, *list, " ", arg, NULL) : arg;
    return NULL;
}

#define DIR_TAKE1(name, field, where, help) \
    AP_INIT_TAKE1(name, ap_set_string_slot, (void *)APR_OFFSETOF(wd_dir, field), where, help)
#define DIR_FLAG(name, field, help) \
    AP_INIT_FLAG(name, ap_set_flag_slot, (void *)APR_OFFSETOF(wd_dir, field), OR_FILEINFO, help)

const command_rec wd_commands[] = {
    AP_INIT_TAKE_ARGV("WSGIScriptAlias", set_alias, NULL, RSRC_CONF, "URL path, script, options"),
    AP_INIT_TAKE_ARGV("WSGIScriptAliasMatch", set_alias, "", RSRC_CONF, "regex, script, options"),
    DAEMON_COMMANDS,                  /* WSGIDaemonProcess and the like: daemons.h */
    AP_INIT_TAKE1("WSGIMapHEADToGET", set_map_head, NULL, OR_FILEINFO, "Auto, On or Off"),
    AP_INIT_ITERATE("WSGITrustedProxies", set_trusted, NULL, OR_FILEINFO, "proxy addresses"),
    AP_INIT_ITERATE("WSGITrustedProxyHeaders", set_trusted, "", OR_FILEINFO, "proxy headers"),
    DIR_TAKE1("WSGIProcessGroup", process_group, ACCESS_CONF | RSRC_CONF, "daemon group"),
    DIR_TAKE1("WSGIApplicationGroup", application_group, ACCESS_CONF | RSRC_CONF, "interpreter"),
    DIR_TAKE1("WSGICallableObject", callable_object, OR_FILEINFO, "the application's name"),
    DIR_FLAG("WSGIPassAuthorization", pass_authorization, "pass Authorization to the app"),
    DIR_FLAG("WSGIChunkedRequest", chunked_request, "accept chunked request bodies"),
    DIR_FLAG("WSGIErrorOverride", error_override, "Apache's error pages for statuses >= 400"),
    DIR_FLAG("WSGIScriptReloading", script_reloading, "reload the script when it changes"),
    {NULL}
};
