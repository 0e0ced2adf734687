"""A small Flask application, deployed through Apache the way Flask's mod_wsgi how-to does it
(tests/apache/test_managed_*.py).

- `/` a page; `/about` the process and interpreter serving it, as JSON (`pid` first-class, so
  tests/functional/load.py collects it); `/echo` a POSTed form back.
"""

import os
import sys

from flask import Flask, current_app, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return (
        "<!doctype html><title>Hello</title>"
        "<h1>Hello from Flask</h1>"
        f"<p>Served by process {os.getpid()}.</p>"
    )


@app.route("/about")
def about():
    return jsonify(
        pid=os.getpid(),
        ppid=os.getppid(),
        uid=os.getuid(),
        release=current_app.config.get("RELEASE"),
        load_id=current_app.config.get("LOAD_ID"),
        version_info=list(sys.version_info[:3]),
        prefix=sys.prefix,
        executable=sys.executable,
        wsgidaemon=getattr(sys.modules.get("wsgidaemon"), "__file__", None),
        cwd=os.getcwd(),
        multiprocess=request.environ.get("wsgi.multiprocess"),
        multithread=request.environ.get("wsgi.multithread"),
        process_group=request.environ.get("mod_wsgi.process_group"),
        application_group=request.environ.get("mod_wsgi.application_group"),
    )


@app.route("/echo", methods=["POST"])
def echo():
    return jsonify(form=request.form.to_dict())
