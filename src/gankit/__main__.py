from gankit.cli import main

raise SystemExit(main())
