"""docs/options.md, rendered from the declarations.  A test compares the file with
`render_options_doc()`; regenerate it with

    .venv/bin/python -m wsgidaemon.config.doctable > docs/options.md
"""

from __future__ import annotations

from wsgidaemon.config.directives import DIRECTIVES, MAIN_SERVER
from wsgidaemon.config.options import BOTH, OPTIONS, SHIM, OptionSpec

REGENERATE = "python -m wsgidaemon.config.doctable > docs/options.md"

_INTRO = """\
# WSGIDaemonProcess options and WSGI directives

<!-- Generated from wsgidaemon/config/options.py and directives.py; do not edit by hand.
     Regenerate with: {regenerate} -->

`WSGIDaemonProcess NAME key=value ...` accepts every option of mod_wsgi 6.x with mod_wsgi's
own code defaults and limits, plus `maximum-requests-jitter`. `wsgidaemon serve` takes the
same options as flags named by the key (`--maximum-requests 100`, `--display-name '%{{GROUP}}'`)
with the same values, defaults and error messages.

Units: durations are seconds (whole numbers as in mod_wsgi, decimals accepted), sizes are
bytes, `response-flush-delay` is milliseconds. Values may be quoted as in Apache
(`display-name="my site"`). "Applied by" says whether the daemon or the Apache shim acts on
the option; shim options have no effect under `wsgidaemon serve`.
"""

_DIRECTIVES_INTRO = """\
## Directives read from an Apache configuration

`wsgidaemon check-config FILE` and the Apache shim read these directives (names are
case-insensitive). Directives of other modules are ignored. `WSGIScriptAlias URL FILE`
and `WSGIScriptAliasMatch REGEX FILE` take the options `process-group=`,
`application-group=`, `callable-object=` and `pass-authorization=`; `WSGIImportScript FILE`
requires `process-group=` and `application-group=`. Conditional sections: `<IfModule>` for
mod_wsgi (or mod_wsgidaemon) and for modules loaded earlier by `LoadModule` is decided,
`<IfDefine>` is decided by `Define`/`UnDefine` and `check-config -D NAME`; any other
condition is assumed true.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _side(spec: OptionSpec) -> str:
    return {SHIM: "shim", BOTH: "daemon, shim"}.get(spec.side, "daemon")


def _default(spec: OptionSpec) -> str:
    return f"`{spec.format(spec.default)}`"


def render_options_table() -> str:
    """The WSGIDaemonProcess option table, one row per declared option."""
    rows = [
        "| Option | Default | Allowed | Applied by | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in OPTIONS:
        doc = spec.doc
        if spec.caveat:
            doc = f"{doc} **Note:** {spec.caveat}."
        rows.append(
            f"| `{spec.key}` | {_cell(_default(spec))} | {_cell(spec.allowed)} | "
            f"{_side(spec)} | {_cell(doc)} |"
        )
    return "\n".join(rows) + "\n"


def render_directives_table() -> str:
    """The single-value directive table."""
    rows = [
        "| Directive | Default | Allowed | Where | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in DIRECTIVES:
        where = "main server only" if spec.where == MAIN_SERVER else "anywhere"
        default = f"`{spec.format(spec.default)}`"
        rows.append(
            f"| `{spec.name}` | {_cell(default)} | {_cell(spec.converter.allowed)} | {where} | "
            f"{_cell(spec.doc)} |"
        )
    return "\n".join(rows) + "\n"


def render_options_doc() -> str:
    """The whole of docs/options.md."""
    return (
        _INTRO.format(regenerate=REGENERATE)
        + "\n## WSGIDaemonProcess options\n\n"
        + render_options_table()
        + "\n"
        + _DIRECTIVES_INTRO
        + "\n"
        + render_directives_table()
    )


if __name__ == "__main__":
    print(render_options_doc(), end="")
