"""MaskIoU head (Mask Scoring R-CNN, as used by CenterMask): predicts how good each mask is.

The 28x28 mask probability is max-pooled to 14x14 and concatenated to the pooled ROI features; four
3x3 convolutions (the last with stride 2, down to 7x7) and three fully connected layers give one IoU
estimate per class. CenterMask reports ``mask_scores = detection score x predicted IoU``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaskIoUHead"]


class MaskIoUHead(nn.Module):
    """``(N, num_classes)`` predicted mask IoU from pooled features ``(N, C, R, R)`` and masks ``(N, 1, 2R, 2R)``.

    Args:
        in_channels: channels of the pooled features (the mask probability adds one more).
        resolution: ``R``, the pooled size (14); the FC input is ``conv_dim * (R // 2) ** 2``.
        conv_dim: width of the convolutions.
        num_conv: number of 3x3 convolutions; the last has stride 2.
        num_classes: IoU outputs.
        fc_dim: width of the two hidden FC layers (hard-coded 1024 in the official head).
    """

    def __init__(
        self, in_channels: int, resolution: int = 14, conv_dim: int = 256, num_conv: int = 4, num_classes: int = 1, fc_dim: int = 1024
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels + 1 if k == 0 else conv_dim, conv_dim, 3, stride=2 if k == num_conv - 1 else 1, padding=1)
            for k in range(num_conv)
        )
        self.fc1 = nn.Linear(conv_dim * (resolution // 2) ** 2, fc_dim)
        self.fc2 = nn.Linear(fc_dim, fc_dim)
        self.predictor = nn.Linear(fc_dim, num_classes)
        for layer in [*self.convs, self.fc1, self.fc2]:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(layer.bias, 0.0)
        nn.init.normal_(self.predictor.weight, mean=0.0, std=0.01)
        nn.init.constant_(self.predictor.bias, 0.0)

    def forward(self, features: Tensor, mask_probs: Tensor) -> Tensor:
        x = torch.cat((features, F.max_pool2d(mask_probs, kernel_size=2, stride=2)), dim=1)
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        x = F.relu(self.fc2(x), inplace=True)
        return self.predictor(x)
