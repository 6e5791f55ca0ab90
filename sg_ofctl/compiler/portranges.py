"""Port ranges as the minimal set of value/mask matches."""
from __future__ import annotations


def range_to_masks(low: int, high: int, bits: int = 16) -> list[tuple[int, int | None]]:
    """[(value, mask)] covering exactly low..high; mask None means exact value.

    Greedy split into aligned power-of-two blocks, which is minimal for
    prefix (value/mask with contiguous high bits) matching."""
    if not 0 <= low <= high < 1 << bits:
        raise ValueError(f"bad range {low}..{high}")
    full = (1 << bits) - 1
    out = []
    while low <= high:
        size = low & -low if low else 1 << bits
        while size > high - low + 1:
            size >>= 1
        mask = full ^ (size - 1)
        out.append((low, None if mask == full else mask))
        low += size
    return out
