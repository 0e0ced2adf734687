from wsgidaemon.cli import main

raise SystemExit(main())
