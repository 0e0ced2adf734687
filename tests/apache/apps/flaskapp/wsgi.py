# The WSGI script Apache's WSGIScriptAlias names, as in Flask's mod_wsgi deployment docs
# (python-path= puts this directory on sys.path). The tests rewrite RELEASE, and touch this
# file, to check that a changed script is loaded again: LOAD_ID is new at every load.
import os
import time

from hello import app as application

RELEASE = "1"
application.config["RELEASE"] = RELEASE
application.config["LOAD_ID"] = f"{os.getpid()}-{time.monotonic_ns()}"
