"""The built-in, training-free default ranker (``build_model("default")``, results named ``salrank-default``).

One module per component: :mod:`.people` (MediaPipe BlazePose, optional), :mod:`.saliency` (pixel
cues), :mod:`.semantic` (EfficientNet-Lite ImageNet cues), :mod:`.proposals`, :mod:`.ranking` and
:mod:`.model` (:class:`DefaultRanker`). See ``docs/readme/default-ranker.md``.
"""

from salrank.modeling.default.model import MODEL_NAME, DefaultRanker, DefaultRankerConfig, build_default_ranker

__all__ = ["MODEL_NAME", "DefaultRanker", "DefaultRankerConfig", "build_default_ranker"]
