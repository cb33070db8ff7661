"""Faster inference forms of a loaded PPA model (explicit, opt-in, same outputs).

A freshly built or loaded :class:`~salrank.modeling.ppa.ppa.PPA` runs the official module layout (in
NHWC by default, see ``PPA.set_channels_last``). :func:`optimize_ppa_for_inference` rewrites it, in
place and once, into an equivalent layout that does less work per image:

* **Frozen BatchNorm folding** (``fold_bn``): every ``conv -> FrozenBN -> ReLU`` of the VoVNet becomes
  ``conv (with bias) -> ReLU`` (:meth:`VoVNet.fold_frozen_bn
  <salrank.modeling.backbones.vovnet.VoVNet.fold_frozen_bn>`): 39 passes over the backbone's feature
  maps less.
* **Fused FCOS towers** (``fuse_fcos``): the classification and box towers, which read the same
  pyramid level, run as one stack of convolutions (one ``C -> 2C`` convolution, then two-group
  convolutions and double-width GroupNorms), and the box and centerness predictors as one
  convolution (:meth:`FCOSHead.fuse_towers <salrank.modeling.ppa.fcos.FCOSHead.fuse_towers>`): half
  the kernel calls on each of the five levels.

Both change only where float roundings happen (products formed before sums, other summation
blocking): on the official fixture and on the full-size benchmark the detections, masks and ranks
are identical to the unoptimised model's and every logit agrees to float rounding (~1e-5 relative)
(``tests/test_ppa_fidelity.py``, ``tests/test_ppa_speed_forms.py``, ``benchmarks/ppa_speed.py --check``).
The rewritten model is an inference form: its state dict differs (no ``norm.*`` tensors in the backbone, ``fcos.fused_towers.*``
instead of the tower keys), so load the official or salrank weights *before* optimising, and train
the unoptimised model (the fused FCOS head refuses to run in training mode).

Measured and not kept (interleaved runs on the 2-core benchmark machine): oneDNN weight prepacking
with conv+ReLU fusion (``torch.ops.mkldnn._convolution_pointwise``) was no faster than the NHWC
eager convolutions; ``torch.jit.freeze`` + ``optimize_for_inference`` on the backbone was not faster
than the folded eager backbone in the quietest rounds. The convolutions (~300 GFLOP per image with
50 detections) already run close to the CPU's float32 peak, which bounds what any exact form can
gain. oneDNN's implicit bf16 arithmetic (``torch.backends.mkldnn.conv.fp32_precision = "bf16"``, AMX)
made single convolutions ~1.5-2x faster but changes values at the 1e-3 relative level, so outputs
could change; it is not used. Nothing computed at inference is unused: the official inference also
runs the MaskIoU and rank heads on every detection, and their outputs are all reported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from salrank.modeling.ppa.ppa import PPA

__all__ = ["optimize_ppa_for_inference"]

logger = logging.getLogger(__name__)


def optimize_ppa_for_inference(
    model: PPA, *, fold_bn: bool = True, fuse_fcos: bool = True
) -> dict[str, int]:
    """Rewrite ``model`` (in place) into its faster inference form; returns what was changed.

    Args:
        model: a PPA model with its weights loaded. It is put in eval mode.
        fold_bn: fold the VoVNet's frozen BatchNorms into the convolutions before them.
        fuse_fcos: run FCOS's classification and box towers as one stack of convolutions.

    Returns ``{"folded_bn": number of BatchNorms folded, "fused_fcos": 1 if the towers were fused}``
    (zeros for what was already done or does not apply, e.g. trainable BatchNorm layers).
    """
    model.eval()
    changes = {"folded_bn": 0, "fused_fcos": 0}
    if fold_bn:
        changes["folded_bn"] = model.backbone.fold_frozen_bn()
    if fuse_fcos:
        changes["fused_fcos"] = int(model.fcos.fuse_towers())
    logger.info("PPA inference form: %s", changes)
    return changes
