"""`python -m pwsup`."""

from pwsup.cli import main

if __name__ == "__main__":
    main()
