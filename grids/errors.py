"""The one error type for bad input: a spec, catalogue entry or argument that is wrong."""


class SpecError(ValueError):
    """Bad input, found before any computation. The message names the file or argument, the
    entry, and what is expected; the CLI prints it and exits with status 2."""
