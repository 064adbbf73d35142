"""The one exception type the CLI turns into a single clear line."""


class SoftenaError(Exception):
    """A failure the user can act on; str() is the whole message."""
