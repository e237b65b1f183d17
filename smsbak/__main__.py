"""Allow ``python -m smsbak``."""

from smsbak.cli import main

main()
