"""Index groups of mediapipe's 478-point face mesh, named for what the renderers move.

Side convention (as ARKit blendshapes): ``LEFT`` is the subject's left, which is on the
*image right* in an unmirrored photo. mediapipe's own "LEFT_EYE" connection set is the
same side (indices 263/362 around it). Lid and lip lines run from the image-left corner
to the image-right corner so paired upper/lower lists line up point by point.
"""

from __future__ import annotations

N_LANDMARKS = 478

# --- lips ----------------------------------------------------------------------------------
#: corners of the outer and inner lip contours (image-left, image-right)
LIP_CORNERS_OUTER: tuple[int, int] = (61, 291)
LIP_CORNERS_INNER: tuple[int, int] = (78, 308)
#: outer contour, corner to corner, along the upper and the lower lip
LIPS_OUTER_UPPER: tuple[int, ...] = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
#: inner contour (the mouth opening), corner to corner; upper[i] faces lower[i]
LIPS_INNER_UPPER: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER: tuple[int, ...] = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: mid-lip centre points: upper outer, upper inner, lower inner, lower outer
LIP_CENTER: tuple[int, int, int, int] = (0, 13, 14, 17)

# --- eyes (lids from the image-left corner to the image-right corner) ----------------------
#: subject's right eye (image left): corners 33 (outer) and 133 (inner)
RIGHT_EYE_CORNERS: tuple[int, int] = (33, 133)
RIGHT_EYE_UPPER: tuple[int, ...] = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER: tuple[int, ...] = (33, 7, 163, 144, 145, 153, 154, 155, 133)
#: rings around the lids, from the lid line outwards (crease, then the socket)
RIGHT_EYE_UPPER_RINGS: tuple[tuple[int, ...], ...] = (
    (247, 30, 29, 27, 28, 56, 190),
    (113, 225, 224, 223, 222, 221, 189),
)
RIGHT_EYE_LOWER_RINGS: tuple[tuple[int, ...], ...] = (
    (130, 25, 110, 24, 23, 22, 26, 112, 243),
    (226, 31, 228, 229, 230, 231, 232, 233, 244),
    (143, 111, 117, 118, 119, 120, 121, 128, 245),
)
RIGHT_IRIS: tuple[int, ...] = (468, 469, 470, 471, 472)  # centre first

#: subject's left eye (image right): corners 362 (inner) and 263 (outer)
LEFT_EYE_CORNERS: tuple[int, int] = (362, 263)
LEFT_EYE_UPPER: tuple[int, ...] = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER: tuple[int, ...] = (362, 382, 381, 380, 374, 373, 390, 249, 263)
LEFT_EYE_UPPER_RINGS: tuple[tuple[int, ...], ...] = (
    (414, 286, 258, 257, 259, 260, 467),
    (413, 441, 442, 443, 444, 445, 342),
)
LEFT_EYE_LOWER_RINGS: tuple[tuple[int, ...], ...] = (
    (463, 341, 256, 252, 253, 254, 339, 255, 359),
    (464, 453, 452, 451, 450, 449, 448, 261, 446),
    (465, 357, 350, 349, 348, 347, 346, 340, 372),
)
LEFT_IRIS: tuple[int, ...] = (473, 474, 475, 476, 477)

# --- brows (inner end last for the right brow, first for the left) -------------------------
RIGHT_BROW_UPPER: tuple[int, ...] = (70, 63, 105, 66, 107)
RIGHT_BROW_LOWER: tuple[int, ...] = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER: tuple[int, ...] = (336, 296, 334, 293, 300)
LEFT_BROW_LOWER: tuple[int, ...] = (285, 295, 282, 283, 276)

# --- face outline, nose, cheeks ------------------------------------------------------------
#: face oval, clockwise on screen from the forehead top (10) via the image right side
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
    377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
FACE_SIDES: tuple[int, int] = (234, 454)  # widest points of the oval (image left, right)
CHIN: int = 152
FOREHEAD: int = 10
NOSE_TIP: int = 1
NOSE_BRIDGE: int = 168
NOSE_WINGS: tuple[int, int] = (129, 358)  # alae (image left, image right)
NOSE_WING_GROUPS: tuple[tuple[int, ...], tuple[int, ...]] = (
    (129, 98, 64, 48, 102, 49, 209, 219),
    (358, 327, 294, 278, 331, 279, 429, 439),
)
CHEEKS: tuple[int, int] = (205, 425)  # cheek centres (image left, image right)
