"""The one exception type that the command line turns into a one-line error."""


class UserError(Exception):
    """Bad input from the user: the message says what was wrong and what to do."""
