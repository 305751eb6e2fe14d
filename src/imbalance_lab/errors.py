"""The one exception type users see: a sentence naming the problem and the fix, no traceback."""


class ImbalanceLabError(ValueError):
    """Bad input or an impossible combination of axes; the message says what to change."""
