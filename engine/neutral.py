"""The photo's own expression, and the rest offset that takes it back to a calm face.

``avatar create`` stores the blendshapes mediapipe reads in the photo (avatar.json
``face.neutral_blendshapes``). A smiling or speaking photo would otherwise talk while
grinning, or with its mouth open through every silence, so the renderer starts from a
*rest*: the photo's expression minus a rest offset, in blendshape units (negative weights):

- ``mouthSmileLeft/Right``: the grin, relaxed toward neutral (corners in and down);
- ``jawOpen``, ``mouthUpperUpLeft/Right``, ``mouthLowerDownLeft/Right``: an open mouth or
  bared teeth, closed (the lips meet, the photo's mouth interior is hidden);
- ``eyeBlinkLeft/Right``, ``eyeSquintLeft/Right``: half-shut eyes, opened (upper lid up).

Commanded channels (speech, presets, idle) then act on top of that rest: jawOpen 0 is a
closed mouth. An avatar whose ``face.keep_expression`` is true keeps its photo as is.

:func:`photo_problems` names what a neutral rest cannot undo well (an extreme grin, shut
eyes, a wide-open mouth); ``avatar create`` warns about it in one line.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Below these the photo counts as neutral on that channel (no offset): mediapipe reads
#: 0.0-0.1 on calm faces, and a near-neutral photo should stay pixel for pixel.
SMILE_REST = 0.15  # a photo's smile is relaxed down to about this
LIPS_DEAD = 0.08  # jawOpen / mouthUpperUp / mouthLowerDown under this: lips left alone
BLINK_DEAD = 0.15  # eyeBlink under this: eyes left alone
SQUINT_DEAD = 0.55  # eyeSquint under this: eyes left alone (most photos read 0.3-0.6)

#: What a rest cannot undo well: (channel(s), threshold, why, pair-averaged).
EXTREME_SMILE = 0.95
SHUT_EYES = 0.6
WIDE_OPEN = 0.6

_SIDES = ("Left", "Right")
REST_CHANNELS: tuple[str, ...] = (
    "mouthSmileLeft", "mouthSmileRight", "jawOpen", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeSquintLeft", "eyeSquintRight",
)


def _get(shapes: Mapping[str, float], name: str) -> float:
    v = shapes.get(name, 0.0)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _pair(shapes: Mapping[str, float], stem: str) -> float:
    return 0.5 * sum(_get(shapes, stem + s) for s in _SIDES)


def rest_offset(shapes: Mapping[str, float]) -> dict[str, float]:
    """The rest offset (channel -> negative weight) that neutralises a photo whose
    blendshapes are ``shapes``; empty for a photo that is already calm.

    A smile is lowered to SMILE_REST (less the photo's jawOpen: mediapipe reads part of
    an open mouth's stretched corners as a smile, and closing the mouth takes that part
    away by itself); an open mouth (any of jawOpen, mouthUpperUp,
    mouthLowerDown past LIPS_DEAD) is closed by its whole reading; eyes past BLINK_DEAD /
    SQUINT_DEAD are opened by the excess."""
    out: dict[str, float] = {}
    jaw = _get(shapes, "jawOpen")
    for s in _SIDES:
        smile = _get(shapes, "mouthSmile" + s) - max(jaw, 0.0)
        if smile > SMILE_REST:
            out["mouthSmile" + s] = -(smile - SMILE_REST)
    lips = {"jawOpen": _get(shapes, "jawOpen")}
    for s in _SIDES:
        lips["mouthUpperUp" + s] = _get(shapes, "mouthUpperUp" + s)
        lips["mouthLowerDown" + s] = _get(shapes, "mouthLowerDown" + s)
    if max(lips.values()) > LIPS_DEAD:
        out.update({k: -v for k, v in lips.items() if v > 0.0})
    for s in _SIDES:
        blink, squint = _get(shapes, "eyeBlink" + s), _get(shapes, "eyeSquint" + s)
        if blink > BLINK_DEAD:
            out["eyeBlink" + s] = -(blink - BLINK_DEAD)
        if squint > SQUINT_DEAD:
            out["eyeSquint" + s] = -(squint - SQUINT_DEAD)
    return {k: round(v, 4) for k, v in out.items() if v < 0.0}


def photo_problems(shapes: Mapping[str, float]) -> list[str]:
    """Why a neutral rest of this photo will look strained (empty when it will not)."""
    out = []
    smile = max(_get(shapes, "mouthSmile" + s) for s in _SIDES)
    if smile > EXTREME_SMILE:
        out.append(f"an extreme grin (mouthSmile {smile:.2f})")
    blink = _pair(shapes, "eyeBlink")
    if blink > SHUT_EYES:
        out.append(f"the eyes are shut (eyeBlink {blink:.2f})")
    jaw = _get(shapes, "jawOpen")
    if jaw > WIDE_OPEN:
        out.append(f"the mouth is wide open (jawOpen {jaw:.2f})")
    return out


def photo_warning(shapes: Mapping[str, float], photo: str) -> str | None:
    """One warning line for ``avatar create``, or None when the photo neutralises well."""
    why = photo_problems(shapes)
    if not why:
        return None
    return (f"{photo} shows {' and '.join(why)}: the calm rest the renderer makes from it "
            "will look strained; pick a photo with a calmer expression, or keep this one "
            "as it is with --keep-expression")


__all__ = ["REST_CHANNELS", "photo_problems", "photo_warning", "rest_offset"]
