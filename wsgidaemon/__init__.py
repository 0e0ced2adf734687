"""wsgidaemon: mod_wsgi daemon mode as a pure-Python gateway daemon behind a small Apache shim."""

__version__ = "0.1.0"
