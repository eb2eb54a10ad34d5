"""The one error type the CLI reports as a single line with exit code 1."""


class CliError(Exception):
    """Something the user can act on: a bad file, an API error, an address that is down."""
