"""``python -m millpond`` is the same as the ``millpond`` command."""

from millpond.cli import main

if __name__ == "__main__":
    main()
