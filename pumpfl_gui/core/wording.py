"""Small rules of English every front end shares (core layer: no imports beyond Python)."""


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``1 alarm``, ``2 alarms``, ``1,200 rows``: a number with its noun agreeing."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"
