"""The one exception type the CLI turns into a single clear line."""


class SoftenaError(Exception):
    """A failure the user can act on; str() is the whole message."""


class UsageError(SoftenaError):
    """The command line itself is wrong (an unknown option, a malformed value): exit status 2, as argparse's."""
