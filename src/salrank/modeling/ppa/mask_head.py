"""CenterMask's spatial-attention-guided mask head (SAG-Mask).

Four 3x3 convolutions (with ReLU) over the 14x14 pooled ROI features, a spatial attention gate
(``sigmoid(conv3x3([mean_c(x), max_c(x)]))`` multiplied onto the features), a 2x2 stride-2 transposed
convolution with ReLU up to 28x28, and a 1x1 predictor giving one mask logit map per class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers.frozen_bn import make_norm

__all__ = ["SpatialAttention", "SpatialAttentionMaskHead"]


def _msra_fill(module: nn.Conv2d | nn.ConvTranspose2d) -> None:
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0.0)


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv([mean over channels, max over channels]))``."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError("spatial attention kernel size must be 3 or 7")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        _msra_fill(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        avg = torch.mean(x, dim=1, keepdim=True)
        peak = torch.max(x, dim=1, keepdim=True).values
        return x * torch.sigmoid(self.conv(torch.cat((avg, peak), dim=1)))


class SpatialAttentionMaskHead(nn.Module):
    """Mask logits ``(N, num_classes, 2R, 2R)`` from pooled features ``(N, C, R, R)``.

    Args:
        in_channels: channels of the pooled features.
        conv_dim: width of the convolutions.
        num_conv: number of 3x3 convolutions before the attention.
        num_classes: mask classes (1 for class-agnostic masks).
        norm: normalisation after each conv (``""`` = none, with conv bias, as in PPA).
    """

    def __init__(self, in_channels: int, conv_dim: int = 256, num_conv: int = 4, num_classes: int = 1, norm: str = "") -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if k == 0 else conv_dim, conv_dim, 3, padding=1, bias=not norm) for k in range(num_conv)
        )
        self.norms = nn.ModuleList((make_norm(norm, conv_dim) or nn.Identity()) for _ in range(num_conv))
        self.spatial_attention = SpatialAttention()
        self.deconv = nn.ConvTranspose2d(conv_dim if num_conv > 0 else in_channels, conv_dim, 2, stride=2)
        self.predictor = nn.Conv2d(conv_dim, num_classes, 1)
        for layer in [*self.convs, self.deconv]:
            _msra_fill(layer)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.constant_(self.predictor.bias, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)), inplace=True)
        x = self.spatial_attention(x)
        x = F.relu(self.deconv(x), inplace=True)
        return self.predictor(x)


def mask_probabilities(mask_logits: Tensor, classes: Tensor) -> Tensor:
    """``(N, 1, M, M)`` sigmoid probabilities of each detection's own class mask."""
    if mask_logits.shape[1] == 1:
        return mask_logits.sigmoid()
    index = torch.arange(mask_logits.shape[0], device=mask_logits.device)
    return mask_logits[index, classes][:, None].sigmoid()
