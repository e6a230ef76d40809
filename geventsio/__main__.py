"""``python -m geventsio module:app`` (see :mod:`geventsio.cli`)."""

from geventsio.cli import main

if __name__ == "__main__":
    main()
