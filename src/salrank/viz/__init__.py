"""Pictures of results: pure functions, numpy arrays in, RGB ``uint8`` arrays out.

* :func:`rank_colormap`: the official rank colour map (SeqRank/PoseSOR "Tian" palette).
* :func:`overlay`: the photo with translucent rank colours, outlines and rank numbers.
* :mod:`salrank.viz.palette`: the palette itself.
"""

from salrank.viz.colormap import rank_colormap
from salrank.viz.overlay import label_position, overlay
from salrank.viz.palette import rank_color, rank_colors, rank_palette

__all__ = ["label_position", "overlay", "rank_color", "rank_colormap", "rank_colors", "rank_palette"]
