"""`python -m katas`: the same as the `katas` command (progress, hint, watch, check, list)."""

from katakit.cli import main

raise SystemExit(main())
