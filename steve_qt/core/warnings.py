"""Warning category for recoverable input problems (clipped intervals, ignored point tiers)."""


class SteveWarning(UserWarning):
    """Something in the input was fixed up or ignored; the message names the file and what."""
