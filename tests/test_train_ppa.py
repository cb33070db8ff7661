"""PPA training: FCOS targets and losses, proposal labelling, mask/MaskIoU/rank losses, steps, the CLI.

Every loss is checked against a hand-computed value; the model tests use the tiny ``ppa-tiny`` preset on
small synthetic images (seconds each).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from salrank.modeling.ppa import PPA, ppa_tiny_config
from salrank.modeling.ppa.training import (
    PPATrainTargets,
    label_proposals,
    rank_classes_from_ranks,
    sample_foreground,
)
from salrank.training.losses.fcos_losses import (
    FCOS_INF,
    centerness_targets,
    fcos_giou_loss,
    fcos_losses,
    fcos_size_ranges,
    fcos_targets,
    sigmoid_focal_loss,
)
from salrank.training.losses.ppa_criterion import (
    PPACriterion,
    mask_bce_loss,
    mask_fraction_in_boxes,
    mask_targets,
    maskiou_loss,
    maskiou_targets,
    ppa_targets,
    rank_loss,
)


def _grid(h: int, w: int, stride: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h) * stride, torch.arange(w) * stride, indexing="ij")
    return torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1).float() + stride // 2


# ------------------------------------------------------------------------------------------ FCOS targets
def test_fcos_size_ranges() -> None:
    assert fcos_size_ranges([64, 128, 256, 512]) == [(-1, 64), (64, 128), (128, 256), (256, 512), (512, FCOS_INF)]


def test_fcos_targets_hand_made_case() -> None:
    """A 64x64 image, strides 8 and 16, size ranges [-1, 16] and [16, inf], centre sampling radius 1.5.

    Box A (0, 0, 24, 24): on P3 its centre region is the whole box; locations 4, 12, 20 lie inside, but
    only (12, 12) reaches at most 16 px -> positive, distances 12 / 8 = 1.5. On P4 the only location
    inside is (8, 8), reaching 16 (inclusive) -> positive, distances (8, 8, 16, 16) / 16.
    Box B (16, 16, 64, 64): its P3 region (28..52) holds 4 locations, all reaching 28 > 16 -> none;
    its P4 region is the whole box: the 9 locations at 24/40/56 -> positive.
    """
    locations = [_grid(8, 8, 8), _grid(4, 4, 16)]
    boxes = torch.tensor([[0.0, 0.0, 24.0, 24.0], [16.0, 16.0, 64.0, 64.0]])
    positive, matched, reg = fcos_targets(locations, [8, 16], boxes, fcos_size_ranges([16]), 1.5)
    assert positive.shape == (64 + 16,)
    locs = torch.cat(locations)
    got = {(int(locs[k, 0]), int(locs[k, 1]), int(k >= 64)): int(matched[k]) for k in torch.nonzero(positive).squeeze(1)}
    want = {(12, 12, 0): 0, (8, 8, 1): 0}
    want.update({(x, y, 1): 1 for x in (24, 40, 56) for y in (24, 40, 56)})
    assert got == want
    k_a3 = 1 * 8 + 1  # (12, 12) on P3
    assert torch.allclose(reg[k_a3], torch.full((4,), 1.5))
    k_a4 = 64 + 0  # (8, 8) on P4
    assert torch.allclose(reg[k_a4], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    k_b = 64 + 1 * 4 + 1  # (24, 24) on P4: (24-16, 24-16, 64-24, 64-24) / 16
    assert torch.allclose(reg[k_b], torch.tensor([0.5, 0.5, 2.5, 2.5]))


def test_fcos_targets_smallest_box_wins_and_no_centre_sampling() -> None:
    locations = [_grid(8, 8, 8)]
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0], [8.0, 8.0, 40.0, 40.0]])
    positive, matched, _ = fcos_targets(locations, [8], boxes, [(-1.0, FCOS_INF)], None)
    assert bool(positive.all())  # every location is strictly inside the big box
    index = {(int(x), int(y)): int(m) for (x, y), m in zip(locations[0].tolist(), matched)}
    assert index[(20, 20)] == 1 and index[(36, 12)] == 1  # inside both: the smaller box
    assert index[(52, 52)] == 0 and index[(4, 20)] == 0
    none, _, reg = fcos_targets(locations, [8], boxes[:0], [(-1.0, FCOS_INF)], 1.5)
    assert not none.any() and reg.shape == (64, 4)


# ------------------------------------------------------------------------------------------ FCOS losses
def test_sigmoid_focal_loss_matches_formula() -> None:
    logits = torch.tensor([[-2.0], [0.5], [3.0]])
    targets = torch.tensor([[0.0], [1.0], [1.0]])
    got = sigmoid_focal_loss(logits, targets, 0.25, 2.0)
    for z, t, g in zip(logits.flatten().tolist(), targets.flatten().tolist(), got.flatten().tolist()):
        p = 1 / (1 + math.exp(-z))
        want = -0.25 * (1 - p) ** 2 * math.log(p) if t == 1 else -0.75 * p**2 * math.log(1 - p)
        assert g == pytest.approx(want, rel=1e-5)


def test_fcos_giou_loss_by_hand() -> None:
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.5, 0.0, 1.0]])
    target = torch.tensor([[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    got = fcos_giou_loss(pred, target)
    # 1: areas 4 and 9, intersection 2 x 2 = 4, union 9, smoothed IoU 5/10, enclosing 3 x 3 = union
    assert got[0].item() == pytest.approx(0.5)
    # 2: areas 3 and 4, intersection 1 x 1.5, union 5.5, enclosing (2 + 1) x (1 + 1) = 6
    assert got[1].item() == pytest.approx(1 - (2.5 / 6.5 - 0.5 / 6), rel=1e-6)


def test_centerness_targets_by_hand() -> None:
    got = centerness_targets(torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]))
    assert got.tolist() == pytest.approx([math.sqrt(1 / 3 * 2 / 4), 1.0])


def test_fcos_losses_normalisation_by_hand() -> None:
    logits = torch.tensor([[0.3], [-1.0], [2.0]])
    box = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    ctr = torch.tensor([0.2, 0.0, -0.4])
    labels = torch.tensor([0, 1, 0])  # class 0 = salient, 1 = background
    reg_t = torch.tensor([[1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    out = fcos_losses(logits, box, ctr, labels, reg_t, 0.25, 2.0)
    onehot = torch.tensor([[1.0], [0.0], [1.0]])
    assert out["loss_fcos_cls"].item() == pytest.approx(sigmoid_focal_loss(logits, onehot).sum().item() / 2, rel=1e-6)
    c = [0.5, 1.0]  # centerness of (1, 1, 2, 2) and (1, 1, 1, 1)
    assert out["loss_fcos_loc"].item() == pytest.approx((0.5 * c[0] + 0.0 * c[1]) / sum(c), rel=1e-6)

    def bce(z: float, t: float) -> float:
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    assert out["loss_fcos_ctr"].item() == pytest.approx((bce(0.2, c[0]) + bce(-0.4, c[1])) / 2, rel=1e-6)


# ------------------------------------------------------------------------------------------ proposals
def test_label_proposals_and_foreground_sampling() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 4.9], [22.0, 20.0, 40.0, 40.0], [50.0, 50.0, 60.0, 60.0]])
    matched, fg = label_proposals(proposals, gt, 0.5)
    assert fg.tolist() == [True, False, True, False]  # IoU 0.5 is foreground, 0.49 is not
    assert matched[:3].tolist() == [0, 0, 1]
    many = torch.ones(300, dtype=torch.bool)
    many[::2] = False
    pick = sample_foreground(many, 512, 0.25, torch.Generator().manual_seed(0))
    assert pick.numel() == 128 and bool(many[pick].all()) and pick.unique().numel() == 128
    assert sample_foreground(torch.zeros(5, dtype=torch.bool), 512, 0.25).numel() == 0


def test_rank_classes_and_targets_of_a_sample() -> None:
    assert rank_classes_from_ranks(torch.tensor([1, 2, 5, 6, 0])).tolist() == [4, 3, 0, 0, 0]
    masks = torch.zeros(3, 20, 40, dtype=torch.uint8)
    sample = {
        "boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.5, 1.0, 1.0], [0.3, 0.3, 0.3, 0.6]]),
        "masks": masks,
        "ranks": torch.tensor([2, 1, 3]),
        "image_id": "x",
    }
    t = ppa_targets(sample, (20, 40))
    assert t.boxes.tolist() == [[0.0, 0.0, 20.0, 10.0], [10.0, 10.0, 40.0, 20.0]]  # the empty box is dropped
    assert t.rank_classes.tolist() == [3, 4] and t.masks is not None and t.masks.shape == (2, 20, 40)


# ------------------------------------------------------------------------------------------ ROI losses
def test_mask_targets_crop_the_matched_gt_into_the_box() -> None:
    gt = torch.zeros(2, 64, 64, dtype=torch.uint8)
    gt[0, 8:36, 8:36] = 1
    gt[1, 10:50, 20:40] = 1
    boxes = torch.tensor([[8.0, 8.0, 36.0, 36.0], [20.0, 10.0, 60.0, 50.0]])
    t = mask_targets(gt, boxes, torch.tensor([0, 1]), 28)
    assert bool(t[0].all())  # the box is exactly the object
    assert bool(t[1, :, :14].all()) and not t[1, :, 14:].any()  # object in the left half of the box


def test_mask_fraction_in_boxes_counts_pixel_centres_inside() -> None:
    g = torch.Generator().manual_seed(0)
    gt = (torch.rand(3, 30, 40, generator=g) > 0.6).to(torch.uint8)
    boxes = torch.tensor([[3.2, 4.5, 20.5, 17.0], [-5.0, -5.0, 50.0, 50.0], [10.0, 10.0, 10.4, 20.0], [0.0, 0.0, 7.7, 29.5]])
    matched = torch.tensor([0, 1, 2, 0])
    got = mask_fraction_in_boxes(gt, boxes, matched)
    ys, xs = torch.meshgrid(torch.arange(30) + 0.5, torch.arange(40) + 0.5, indexing="ij")
    for k, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        inside = (xs > x1) & (xs < x2) & (ys > y1) & (ys < y2)
        m = gt[int(matched[k])].bool()
        assert got[k].item() == pytest.approx((m & inside).sum().item() / m.sum().item(), abs=1e-6)


def test_maskiou_targets_and_loss_by_hand() -> None:
    logits = torch.full((1, 28, 28), -1.0)
    logits[0, :, :14] = 1.0  # predicts the left half
    target = torch.ones(1, 28, 28, dtype=torch.bool)  # the box sees the object everywhere ...
    iou = maskiou_targets(logits, target, torch.tensor([0.5]))  # ... but only half of it lies in the box
    # full object = 784 / 0.5 = 1568 box pixels; overlap 392; union 392 + 1568 - 392
    assert iou.item() == pytest.approx(392 / 1568)
    pred = torch.tensor([0.5, 0.2, 0.9])
    assert maskiou_loss(pred, torch.tensor([1.0, 0.0, 0.5])).item() == pytest.approx(0.5 * (0.25 + 0.16) / 2)
    assert maskiou_loss(pred, torch.zeros(3)).item() == 0.0


def test_mask_bce_and_rank_losses_by_hand() -> None:
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 0.5]]])
    target = torch.tensor([[[True, True], [False, False]]])
    want = (math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)) + math.log(1 + math.exp(0.5))) / 4
    assert mask_bce_loss(logits, target).item() == pytest.approx(want, rel=1e-6)
    rank_logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, math.log(4.0)], [1.0, 0.0, 0.0, 0.0, 0.0]])
    want_ce = (-math.log(4 / 8) - math.log(1 / (math.e + 4))) / 2
    assert rank_loss(rank_logits, torch.tensor([4, 1])).item() == pytest.approx(want_ce, rel=1e-6)
    assert mask_bce_loss(torch.zeros(0, 28, 28), torch.zeros(0, 28, 28, dtype=torch.bool)).item() == 0.0


# ------------------------------------------------------------------------------------------ model steps
def _scene(seed: int = 0, h: int = 128, w: int = 160) -> tuple[torch.Tensor, dict]:
    """An image with two flat-coloured rectangles (rank 1 the larger, red one) and its sample dict."""
    g = torch.Generator().manual_seed(seed)
    image = (torch.rand(3, h, w, generator=g) * 60 + 60).to(torch.uint8)
    boxes_px = [(16, 12, 112, 100), (100, 60, 150, 120)]
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes_px):
        masks[k, y1:y2, x1:x2] = 1
    image[:, 12:100, 16:112] = torch.tensor([230, 30, 30], dtype=torch.uint8)[:, None, None]
    image[:, 60:120, 100:150] = torch.tensor([30, 30, 200], dtype=torch.uint8)[:, None, None]
    masks[0, 60:100, 100:112] = 0  # the blue object is in front
    boxes = torch.tensor(boxes_px, dtype=torch.float32) / torch.tensor([w, h, w, h], dtype=torch.float32)
    return image, {"masks": masks, "boxes": boxes, "ranks": torch.tensor([1, 2]), "image_id": f"scene{seed}"}


def _losses(model: PPA, criterion: PPACriterion, images: list[torch.Tensor], samples: list[dict]) -> dict[str, torch.Tensor]:
    batch, sizes = model.prepare_train_images(images)
    targets = [ppa_targets(s, size) for s, size in zip(samples, sizes)]
    return criterion(model.forward_train(batch, sizes, targets), targets)


def test_training_forward_and_one_step_give_gradients_everywhere() -> None:
    torch.manual_seed(0)
    model = PPA(ppa_tiny_config()).train()
    criterion = PPACriterion()
    scenes = [_scene(0), _scene(1)]
    images = [s[0] for s in scenes]
    samples = [s[1] for s in scenes]
    batch, sizes = model.prepare_train_images(images)
    targets = [ppa_targets(s, size) for s, size in zip(samples, sizes)]
    out = model.forward_train(batch, sizes, targets)
    for roi in out.rois:
        # at initialisation FCOS proposes nothing above 0.05: the appended GT boxes are the foreground
        assert roi.proposal_boxes.shape[0] >= 2 and roi.mask_logits.shape[1:] == (28, 28)
        assert roi.sor_logits.shape[1] == 5 and set(roi.rank_targets.tolist()) <= {3, 4}
    losses = criterion(out, targets)
    assert set(losses) == {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr", "loss_mask", "loss_maskiou", "sor_loss"}
    assert all(torch.isfinite(v) and v.item() > 0 for v in losses.values()), losses
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sum(losses.values()).backward()
    heads = ("roi_heads.mask_head.", "roi_heads.maskiou_head.", "roi_heads.rank_head.", "fcos.cls_tower.", "fcos.bbox_tower.")
    for name, p in model.named_parameters():
        if name.startswith(heads) or name.startswith(("fcos.cls_logits", "fcos.bbox_pred", "fcos.ctrness", "backbone.stem")):
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"
    for part in ("backbone", "neck"):
        assert sum(float(p.grad.abs().sum()) for n, p in model.named_parameters() if n.startswith(part) and p.grad is not None) > 0
    assert not any(n.startswith("backbone") and p.requires_grad for n, p in model.named_buffers())  # FrozenBN: buffers only
    optimizer.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert any(n.startswith("roi_heads.rank_head") for n in changed) and any(n.startswith("backbone") for n in changed)


def test_a_few_steps_on_one_image_reduce_the_loss() -> None:
    torch.manual_seed(1)
    model = PPA(ppa_tiny_config()).train()
    criterion = PPACriterion()
    image, sample = _scene(2)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005, momentum=0.9)
    totals, history = [], []
    for _ in range(12):
        losses = _losses(model, criterion, [image], [sample])
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
        history.append({k: v.item() for k, v in losses.items()})
    assert all(math.isfinite(t) for t in totals)
    assert sum(totals[-3:]) / 3 < 0.75 * sum(totals[:3]) / 3, totals
    first, last = history[0], history[-1]
    assert last["loss_mask"] < first["loss_mask"] and last["sor_loss"] < 0.6 * first["sor_loss"], history
    assert last["loss_fcos_cls"] < first["loss_fcos_cls"], history


def test_an_image_without_objects_gives_zero_roi_losses() -> None:
    torch.manual_seed(0)
    model = PPA(ppa_tiny_config()).train()
    image, sample = _scene(3)
    empty = {"masks": sample["masks"][:0], "boxes": sample["boxes"][:0], "ranks": sample["ranks"][:0], "image_id": "empty"}
    losses = _losses(model, PPACriterion(), [image], [empty])
    assert losses["loss_mask"].item() == 0.0 and losses["sor_loss"].item() == 0.0
    assert losses["loss_fcos_cls"].item() > 0 and losses["loss_fcos_loc"].item() == 0.0
    sum(losses.values()).backward()  # still a graph


def test_targets_dataclass_defaults() -> None:
    t = PPATrainTargets(boxes=torch.zeros(0, 4), rank_classes=torch.zeros(0, dtype=torch.int64))
    assert t.masks is None


# ------------------------------------------------------------------------------------------ initial weights
def test_centermask_detector_checkpoint_initialises_all_but_the_rank_head(shared_fixtures: Path, tmp_path: Path) -> None:
    from salrank.checkpoint import read_official_checkpoint
    from salrank.errors import CheckpointError
    from salrank.modeling.ppa import ppa_config_from_official_yaml
    from salrank.modeling.ppa.key_map import load_centermask_detector_checkpoint

    ppa_dir = shared_fixtures / "models" / "ppa"
    expected = torch.load(ppa_dir / "expected.pt", weights_only=True)
    cfg = ppa_config_from_official_yaml(ppa_dir / "config.yaml", vovnet_spec=expected["meta"]["vovnet_spec"])
    state = read_official_checkpoint(ppa_dir / "checkpoint.pth")
    detector = {k: v for k, v in state.items() if not k.startswith("roi_heads.sor_head.")}
    model = PPA(cfg)
    report = load_centermask_detector_checkpoint(model, "centermask.pth", state=detector)
    assert report.missing and all(k.startswith("roi_heads.rank_head.") for k in report.missing)
    stem = next(k for k in detector if k.startswith("backbone.bottom_up.stem") and k.endswith("conv.weight"))
    assert any(torch.equal(v, detector[stem]) for v in model.state_dict().values())
    with pytest.raises(CheckpointError, match="not a CenterMask"):
        load_centermask_detector_checkpoint(model, "other.pth", state={"sem_seg_head.x": torch.zeros(1)})


# ------------------------------------------------------------------------------------------ CLI
def test_salrank_train_ppa_cpu_smoke_from_the_cli(tmp_path: Path) -> None:
    from salrank.cli import main
    from salrank.data.synth import SynthConfig, generate_synth_dataset

    splits = generate_synth_dataset(tmp_path / "synth", SynthConfig(n=10, width=96, height=72, seed=3))
    run = tmp_path / "run"
    args = [
        "train",
        "ppa_cpu_smoke",
        f"data.train={splits['train']}",
        f"data.val={splits['val']}",
        "data.max_val_images=2",
        "solver.max_iter=2",
        "checkpoint.period=1",
        "eval.period=-1",
        "input.size=72",
        "workers=0",
        f"--output-dir={run}",
    ]
    assert main(args) == 0
    assert (run / "checkpoints" / "model_0000001.pth").is_file() and (run / "checkpoints" / "model_final.pth").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert any('"sor_loss"' in line for line in lines) and any('"loss_fcos_cls"' in line for line in lines)
    from salrank.modeling.loading import load_model

    model = load_model(weights=run / "model_final.safetensors")
    assert isinstance(model, PPA) and model.cfg.vovnet_spec is not None and model.cfg.fpn_out_channels == 32
