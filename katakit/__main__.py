"""`python -m katakit`: the same as the `katas` command (progress, test, hint, watch, check, ...)."""

from katakit.cli import main

raise SystemExit(main())
