"""The network's shape, stored with every model (core layer; no torch, so that checking a file
does not load it).

The shape follows the data (:meth:`ModelSpec.for_data`): a window of about a minute of
readings, at least 32; a wider network for few sensors. Both were chosen by measurement
(docs/BENCHMARKS.md, "Choosing the detector").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ARCHITECTURE = "conv1d-ae-v2"
WINDOW_SECONDS = 60.0  # a window spans about a minute of readings ...
MIN_WINDOW, MAX_WINDOW = 32, 128  # ... but never fewer than 32 readings nor more than 128
FEW_SENSORS = 16  # up to this many sensors get the wider network (chosen on SKAB's 8)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network, stored with every model."""

    sensors: int
    window: int = 32
    channels: tuple[int, int] = (16, 4)
    kernel: int = 3
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        if self.sensors < 1:
            raise ValueError("a model needs at least one sensor")
        if self.window < 4 or self.window % 4:
            raise ValueError(f"window must be a multiple of 4 (got {self.window})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (got {self.kernel})")
        if self.architecture != ARCHITECTURE:
            raise ValueError(f"unknown architecture {self.architecture!r}")

    @classmethod
    def for_data(cls, sensors: int, interval_s: float | None) -> ModelSpec:
        """The shape for data with ``sensors`` columns read every ``interval_s`` seconds.

        The window covers about a minute (SKAB, read each second: 60 rows), never fewer than 32
        rows (the pump schema, read each minute: 32) nor more than 128. Few sensors get
        channels 32/16 and kernel 7 (chosen on SKAB); many get the compact 16/4, kernel 3
        (chosen on the pump schema's 51).
        """
        rows = WINDOW_SECONDS / interval_s if interval_s and interval_s > 0 else MIN_WINDOW
        window = int(min(MAX_WINDOW, max(MIN_WINDOW, 4 * round(rows / 4))))
        if sensors <= FEW_SENSORS:
            return cls(sensors=sensors, window=window, channels=(32, 16), kernel=7)
        return cls(sensors=sensors, window=window, channels=(16, 4), kernel=3)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(
            sensors=int(d["sensors"]),
            window=int(d["window"]),
            channels=tuple(int(c) for c in d["channels"]),
            kernel=int(d["kernel"]),
            architecture=str(d.get("architecture")),
        )
