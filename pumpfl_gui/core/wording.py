"""Small rules of English every front end shares (core layer: no imports beyond Python)."""


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``1 alarm``, ``2 alarms``, ``1,200 rows``: a number with its noun agreeing."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 1 h 59 min'."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = int(round(seconds / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)
