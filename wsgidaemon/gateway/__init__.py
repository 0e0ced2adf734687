"""Everything that touches processes, sockets, signals and threads: the master, its workers and
the WSGI adapter they run. `protocol/` and `config/` never import from here."""
