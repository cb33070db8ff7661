"""PPA building blocks with hand-checked cases (no golden fixtures needed)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _ppa_helpers import TINY_SPEC, lively, tiny_config

from salrank.errors import InputError
from salrank.modeling.backbones.vovnet import VOVNET_SPECS, VoVNet, VoVNetSpec, vovnet_spec
from salrank.modeling.layers.frozen_bn import FrozenBatchNorm2d, make_norm
from salrank.modeling.necks.fcos_fpn import FCOSFPN
from salrank.modeling.ppa import PPAConfig, RankHeadConfig, build_ppa
from salrank.modeling.ppa.config import FCOSConfig
from salrank.modeling.ppa.fcos import fcos_detections, fcos_locations
from salrank.modeling.ppa.postprocess import paste_masks_in_image, postprocess_boxes
from salrank.modeling.ppa.preprocess import shortest_edge_size
from salrank.modeling.ppa.rank_head import RANK_HEAD_VARIANTS, RankHead, box_position_vector, box_quant_index
from salrank.modeling.ppa.readout import greedy_rank_readout
from salrank.modeling.ppa.roi_heads import assign_levels_by_area, assign_levels_by_ratio, position_channels


# --------------------------------------------------------------------------- layers / backbone / neck
def test_frozen_bn_matches_batchnorm_in_eval() -> None:
    bn = torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.normal_(), bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    bn.eval()
    frozen = FrozenBatchNorm2d.convert(bn)
    x = torch.randn(2, 5, 4, 4)
    assert torch.equal(frozen(x), bn(x))
    scale, shift = frozen.scale_and_shift()
    torch.testing.assert_close(x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), bn(x))
    assert set(frozen.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    assert not list(frozen.parameters())
    assert make_norm("", 4) is None and isinstance(make_norm("GN", 32), torch.nn.GroupNorm)
    with pytest.raises(ValueError):
        make_norm("LN", 4)


@pytest.mark.parametrize("name", ["V-19-slim-dw-eSE", "V-19-eSE", "V-39-eSE", "V-57-eSE"])
def test_official_vovnet_specs_build(name: str) -> None:
    with torch.device("meta"):
        net = VoVNet(vovnet_spec(name), out_features=("stage2", "stage3", "stage4", "stage5"))
    spec = VOVNET_SPECS[name]
    for i, stage in enumerate(("stage2", "stage3", "stage4", "stage5")):
        assert len(getattr(net, stage).blocks) == spec.block_per_stage[i]
        assert net.output_shape()[stage].channels == spec.stage_out_ch[i]
        assert net.output_shape()[stage].stride == 4 * 2**i
    if spec.dw:
        assert net.stage3.blocks[0].reduction is not None and hasattr(net.stem[1], "dw")


def test_vovnet_forward_shapes_and_residual_blocks() -> None:
    net = VoVNet(TINY_SPEC, out_features=("stem", "stage3", "stage5")).eval()
    out = net(torch.randn(1, 3, 64, 96))
    assert list(out) == ["stem", "stage3", "stage5"]
    assert out["stem"].shape == (1, 16, 16, 24)
    assert out["stage3"].shape == (1, 16, 8, 12) and out["stage5"].shape == (1, 32, 2, 3)
    assert not net.stage4.blocks[0].identity and net.stage4.blocks[1].identity
    with pytest.raises(KeyError):
        vovnet_spec("V-1000")
    with pytest.raises(ValueError):
        VoVNetSpec("bad", (8, 8), (8,) * 4, (8,) * 4, 2, (1,) * 4)
    assert VoVNetSpec.from_dict({"name": "tiny", "stem": [8, 8, 16], "stage_conv_ch": [8] * 4, "stage_out_ch": [16, 16, 32, 32],
                                 "layer_per_block": 2, "block_per_stage": [1, 1, 2, 1], "eSE": True, "dw": False}) == TINY_SPEC


def test_fpn_levels() -> None:
    fpn = FCOSFPN([16, 32, 64], [8, 16, 32], 24, top_levels=2)
    feats = [torch.randn(1, 16, 16, 20), torch.randn(1, 32, 8, 10), torch.randn(1, 64, 4, 5)]
    out = fpn(feats)
    assert list(out) == ["p3", "p4", "p5", "p6", "p7"]
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
    assert fpn.size_divisibility == 32 and fpn.out_strides["p7"] == 128
    # top-down: p5 is the output conv of the lateral of the coarsest input only
    torch.testing.assert_close(out["p5"], fpn.output_convs[2](fpn.lateral_convs[2](feats[2])))


# --------------------------------------------------------------------------- FCOS
def test_fcos_locations_are_cell_centres() -> None:
    (loc,) = fcos_locations([(2, 3)], [8])
    assert loc.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]


def test_fcos_detections_threshold_topk_nms_and_cap() -> None:
    cfg = FCOSConfig(score_threshold=0.3, pre_nms_topk=3, post_nms_topk=2, nms_threshold=0.6, strides=(8,))
    locations = fcos_locations([(2, 2)], [8])
    probs = torch.tensor([0.9, 0.2, 0.8, 0.7]).reshape(1, 1, 2, 2)
    logits = torch.log(probs / (1 - probs))
    ctr = torch.zeros(1, 1, 2, 2)  # sigmoid 0.5
    reg = torch.full((1, 4, 2, 2), 0.5)  # +-4 px boxes, disjoint
    det = fcos_detections(locations, ([logits], [reg], [ctr]), cfg.strides, (16, 16), cfg)
    # location 1 is below the threshold; the two best of the rest survive the cap
    assert len(det) == 2
    torch.testing.assert_close(det.scores, torch.tensor([0.45, 0.40]).sqrt())
    torch.testing.assert_close(det.boxes[0], torch.tensor([0.0, 0.0, 8.0, 8.0]))
    assert det.locations.tolist() == [[4.0, 4.0], [4.0, 12.0]]
    # two overlapping boxes: NMS keeps the better one
    reg2 = torch.full((1, 4, 2, 2), 10.0)  # +-80 px boxes all overlap heavily
    det2 = fcos_detections(locations, ([logits], [reg2], [ctr]), cfg.strides, (16, 16), cfg)
    assert len(det2) == 1 and det2.locations.tolist() == [[4.0, 4.0]]


def test_fcos_post_nms_cap_keeps_ties() -> None:
    cfg = FCOSConfig(score_threshold=0.1, post_nms_topk=2, nms_threshold=0.6, strides=(8,))
    locations = fcos_locations([(1, 3)], [8])
    logits = torch.zeros(1, 1, 1, 3)  # equal scores
    det = fcos_detections(locations, ([logits], [torch.full((1, 4, 1, 3), 0.25)], [torch.zeros(1, 1, 1, 3)]), (8,), (8, 24), cfg)
    assert len(det) == 3  # the official kthvalue rule keeps every score >= the 2nd best


# --------------------------------------------------------------------------- ROI heads
def test_ratio_level_assignment() -> None:
    h, w = 480, 640
    area = h * w
    def box(a: float) -> list[float]:
        side = math.sqrt(a)
        return [0.0, 0.0, side, side]
    boxes = torch.tensor([box(area), box(0.6 * area), box(0.5 * area), box(0.3 * area), box(0.25 * area), box(0.01 * area), [5, 5, 5, 9]])
    levels = assign_levels_by_ratio(boxes, (h, w), 3, 5)
    assert levels.tolist() == [2, 2, 1, 1, 0, 0, 0]  # > 1/2 -> P5, (1/4, 1/2] -> P4, else P3; empty box -> P3
    assert assign_levels_by_area(torch.tensor([[0, 0, 224.0, 224.0], [0, 0, 32.0, 32.0], [0, 0, 1000.0, 1000.0]]), 3, 5).tolist() == [1, 0, 2]


def test_position_channels_equal_the_official_grids_at_640x480() -> None:
    for stride in (8, 16, 32):
        y, x = position_channels((480 // stride, 640 // stride), stride, (480, 640))
        oy = torch.arange(stride / 2, 480, stride).reshape(1, 1, -1, 1)
        ox = torch.arange(stride / 2, 640, stride).reshape(1, 1, 1, -1)
        oy /= 480
        ox /= 640
        assert torch.equal(y, oy.repeat(1, 1, 1, 640 // stride))
        assert torch.equal(x, ox.repeat(1, 1, 480 // stride, 1))
    # any size: the same cell centres, normalised by the real image size (padding goes past 1)
    y, x = position_channels((15, 30), 32, (450, 960))
    assert y[0, 0, 0, 0] == pytest.approx(16 / 450) and x[0, 0, 0, -1] == pytest.approx((29 * 32 + 16) / 960)


def test_paste_masks_matches_full_image_grid_sample() -> None:
    """detectron2's CPU path (one mask at a time in a window) equals its full-image GPU path at 0.5."""
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 28, 28, generator=g)
    boxes = torch.tensor([[10.2, 5.7, 60.1, 40.9], [0, 0, 100, 80], [95.5, 70.2, 100, 80], [30, 30, 31.5, 33], [-5, 10, 40, 90], [50, 2, 99.9, 79.9]])
    boxes, keep = postprocess_boxes(boxes, (80, 100), (80, 100))
    assert keep.all()
    got = paste_masks_in_image(masks, boxes, (80, 100))
    ys = torch.arange(80, dtype=torch.float32) + 0.5
    xs = torch.arange(100, dtype=torch.float32) + 0.5
    x0, y0, x1, y1 = boxes.split(1, dim=1)
    gy = ((ys - y0) / (y1 - y0) * 2 - 1)[:, :, None].expand(6, 80, 100)
    gx = ((xs - x0) / (x1 - x0) * 2 - 1)[:, None, :].expand(6, 80, 100)
    ref = F.grid_sample(masks[:, None], torch.stack([gx, gy], dim=3), align_corners=False)[:, 0] >= 0.5
    assert torch.equal(got, ref)
    assert int(got.sum()) > 1000


def test_postprocess_scales_clips_and_drops_empty_boxes() -> None:
    boxes = torch.tensor([[-10.0, 5.0, 50.0, 40.0], [700.0, 10.0, 720.0, 20.0], [10.0, 10.0, 10.0, 30.0]])
    out, keep = postprocess_boxes(boxes, (480, 640), (240, 320))
    assert out[0].tolist() == [0.0, 2.5, 25.0, 20.0]
    assert keep.tolist() == [True, False, False]
    assert shortest_edge_size(375, 500, 480, 1333) == (480, 640)
    assert shortest_edge_size(100, 1000, 480, 1333) == (133, 1333)
    assert shortest_edge_size(600, 300, 480, 1333) == (960, 480)


# --------------------------------------------------------------------------- ranking
def test_greedy_readout() -> None:
    # rank columns 4..0; rows are detections
    probs = torch.tensor([
        [0.05, 0.10, 0.10, 0.10, 0.70],
        [0.50, 0.10, 0.60, 0.60, 0.20],
        [0.45, 0.80, 0.30, 0.30, 0.10],
    ])
    ranks, chosen = greedy_rank_readout(torch.log(probs))
    # softmax over detections (dim 0) of log p == p / column sum
    p = probs / probs.sum(0)
    assert ranks.tolist() == [4, 3, 1, ][:0] + ranks.tolist()  # shape check below
    # column 4 -> row 0; column 3 -> row 1; column 2 -> row 1 is taken, best remaining row 2 (0.3/1.0);
    # column 1 -> row 2 taken... only row 1/2 left: row 2 got rank 2 so column 1 has nobody > 0.1 left
    assert ranks.tolist() == [4, 3, 2]
    torch.testing.assert_close(chosen, torch.stack([p[0, 4], p[1, 3], p[2, 2]]))
    # a single detection always gets the top rank; nothing when the threshold is not exceeded
    assert greedy_rank_readout(torch.randn(1, 5))[0].tolist() == [4]
    flat = torch.zeros(20, 5)  # uniform 1/20 < 0.1
    assert (greedy_rank_readout(flat)[0] == -1).all()
    assert greedy_rank_readout(torch.zeros(0, 5))[0].shape == (0,)


def test_readout_can_skip_a_rank_class() -> None:
    # 12 detections; column 3 is flat (max 1/12 < 0.1) so class 3 is skipped while 2 is given
    logits = torch.zeros(12, 5)
    logits[0, 4] = 10.0
    logits[1, 2] = 10.0
    ranks, _ = greedy_rank_readout(logits)
    assert ranks[0] == 4 and ranks[1] == 2 and 3 not in ranks.tolist()


def test_box_positions() -> None:
    boxes = torch.tensor([[0.0, 0.0, 320.0, 240.0], [600.0, 400.0, 700.0, 500.0]])
    pos = box_position_vector(boxes, 640, 480)
    assert pos[0].tolist() == [0.25, 0.25, 0.5, 0.5]  # 4th entry is (y1 + y2) / H, as in the official head
    assert box_quant_index(boxes, 640, 480, 4).tolist() == [1 * 4 + 1, 15]  # the second centre is off the grid: clamped


@pytest.mark.parametrize("name", list(RANK_HEAD_VARIANTS))
def test_every_official_rank_head_runs(name: str) -> None:
    obj_dim = 28 if name == "SelfAttentionWithOtherPos" else 32
    cfg = RankHeadConfig(name=name, conv_dim=8, num_conv=2, dense_dim=16, obj_dim=obj_dim, d_model=32, n_head=2, num_layers=1)
    head = RankHead(cfg, in_channels=16).eval()
    v = RANK_HEAD_VARIANTS[name]
    feats, masks = torch.randn(3, 16, 14, 14), torch.rand(3, 1, 28, 28)
    pos = torch.rand(3, 2, 14, 14) if v.position_channels != "none" else None
    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 5, 300, 200], [100, 50, 600, 470]])
    with torch.no_grad():
        out = head(feats, masks, pos, boxes, (640.0, 480.0))
    assert out.shape == (3, 5)
    assert (head.encoder is not None) == v.attention and (head.pos_conv is not None) == (v.position_channels == "pos+conv")
    if v.attention:  # permutation-equivariant over the detections (no positional encoding between objects)
        with torch.no_grad():
            perm = head(feats[[2, 0, 1]], masks[[2, 0, 1]], None if pos is None else pos[[2, 0, 1]], boxes[[2, 0, 1]], (640.0, 480.0))
        torch.testing.assert_close(perm, out[[2, 0, 1]], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- whole model, any size
def test_any_size_input_runs() -> None:
    torch.manual_seed(0)
    model = lively(build_ppa(tiny_config()))
    rng = np.random.default_rng(0)
    for h, w, resized in ((375, 500, (128, 171)), (300, 900, (128, 384)), (200, 150, (171, 128))):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        assert tuple(model.preprocess(image).shape[-2:]) == resized  # then padded to multiples of 32
        (result,) = model.predict([image], ["x"])
        assert result.masks.shape[1:] == (h, w) and 1 <= len(result) <= 5
        assert (np.diff(result.extras["rank_class"]) < 0).all()
        assert (result.boxes[:, [0, 2]] <= w).all() and (result.boxes[:, [1, 3]] <= h).all()


@pytest.mark.parametrize("size", [(480, 640), (480, 960), (600, 456)])
def test_pooled_positions_are_absolute_coordinates_of_the_real_image(size: tuple[int, int]) -> None:
    """``pos`` of a bin = the bin centre / image size (bilinear pooling of a linear map is exact inside)."""
    from salrank.modeling.ppa.detections import PPADetections

    torch.manual_seed(0)
    model = build_ppa(tiny_config())
    h, w = size
    hp, wp = (h + 31) // 32 * 32, (w + 31) // 32 * 32
    features = {f"p{k}": torch.randn(1, 32, hp // 2**k, wp // 2**k) for k in (3, 4, 5)}
    boxes = torch.tensor([[40.0, 50.0, 200.0, 170.0], [0.3 * w, 0.2 * h, 0.9 * w, 0.95 * h], [100.0, 120.0, 130.0, 160.0]])
    det = PPADetections(size, boxes, torch.ones(3), torch.zeros(3, dtype=torch.int64), torch.zeros(3, 2))
    record: dict = {}
    with torch.no_grad():
        model.roi_heads(features, det, record)
    pos = record["sor_in_pos"]
    bins = (torch.arange(14) + 0.5) / 14
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        cy = (y1 + bins * (y2 - y1)) / h
        cx = (x1 + bins * (x2 - x1)) / w
        torch.testing.assert_close(pos[i, 0], cy[:, None].expand(14, 14), rtol=0, atol=1e-5)
        torch.testing.assert_close(pos[i, 1], cx[None, :].expand(14, 14), rtol=0, atol=1e-5)


def test_official_coordinate_frame_only_accepts_its_fixed_size() -> None:
    """``coordinate_frame="official"`` normalises by IMG_WIDTH/IMG_HEIGHT (640x480 in the official configs,
    160x128 here to keep the test small): identical to ours at that size, an error at any other."""
    cfg = tiny_config()
    cfg.rank_head.img_width, cfg.rank_head.img_height = 160, 128
    cfg.coordinate_frame = "official"
    torch.manual_seed(0)
    official = lively(build_ppa(cfg))
    ours = build_ppa(replace(cfg, coordinate_frame="image"))
    ours.load_state_dict(official.state_dict())
    image = torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)
    a: dict = {}
    b: dict = {}
    official.run_image(image, record=a)
    ours.run_image(image, record=b)
    assert "sor_in_pos" in a
    assert torch.equal(a["sor_in_pos"], b["sor_in_pos"]) and torch.equal(a["sor_logits"], b["sor_logits"])
    with pytest.raises(InputError, match="160x128"):
        official.run_image(torch.randint(0, 255, (3, 128, 192), dtype=torch.uint8))


def test_predict_rejects_bad_images_and_handles_no_detection() -> None:
    model = build_ppa(tiny_config())  # official init: no location passes the 0.3 threshold
    (result,) = model.predict([np.zeros((48, 64, 3), np.uint8)], ["blank"])
    assert len(result) == 0 and result.masks.shape == (0, 48, 64) and result.image_name == "blank"
    with pytest.raises(InputError):
        model.predict([np.zeros((48, 64), np.uint8)])
    with pytest.raises(InputError):
        model.predict([np.zeros((48, 64, 3), np.float32)])


def test_registry_and_dict_config() -> None:
    from salrank.config import config_to_dict
    from salrank.modeling import build_model

    cfg = tiny_config(name="SinglePredictor")
    model = build_model("ppa", config_to_dict(cfg))
    assert model.cfg == cfg and model.roi_heads.rank_head.encoder is None
    with pytest.raises(InputError):
        PPAConfig(rank_head=RankHeadConfig(name="Nope")).validate()


def test_ppa_rank_map_keeps_skipped_rank_classes() -> None:
    from salrank.io.rank_maps import render_rank_map
    from salrank.modeling.ppa.rank_map import render_ppa_rank_map
    from salrank.structures import RankedInstances

    masks = np.zeros((3, 8, 8), bool)
    masks[0, :6, :6] = True  # largest, painted first
    masks[1, 4:, 4:] = True
    masks[2, 0, 7] = True
    result = RankedInstances.from_masks(masks, image_name="x")
    result.extras.update(rank_class=np.array([4, 3, 2]), detection_index=np.array([2, 0, 1]))
    # no class skipped: identical to the generic ASSR renderer
    assert np.array_equal(render_ppa_rank_map(result), render_rank_map(result, "assr"))
    result.extras["rank_class"] = np.array([4, 3, 1])  # class 2 skipped by the read-out
    out = render_ppa_rank_map(result)
    assert out[0, 0] == 255 and out[7, 7] == 229 and out[0, 7] == 178 and out[5, 5] == 229  # smaller on top
    assert render_rank_map(result, "assr")[0, 7] == 204


def test_ppa_rank_map_png_reads_back_as_the_assr_evaluation_reads_it(tmp_path) -> None:
    from salrank.io.rank_maps import RankMapFolder
    from salrank.modeling.ppa import save_ppa_rank_map
    from salrank.modeling.ppa.rank_map import render_ppa_rank_map
    from salrank.structures import RankedInstances

    masks = np.zeros((2, 6, 9), bool)
    masks[0, 1:4, 1:5] = True
    masks[1, 3:6, 4:9] = True
    result = RankedInstances.from_masks(masks, image_name="COCO_x")
    result.extras["rank_class"] = np.array([4, 2])
    path = save_ppa_rank_map(result, tmp_path / "COCO_x.png")
    folder = RankMapFolder(tmp_path)
    assert np.array_equal(folder.read("COCO_x"), render_ppa_rank_map(result))
    assert set(np.unique(folder.read("COCO_x")).tolist()) == {0, 204, 255}
    with pytest.raises(InputError):
        save_ppa_rank_map(result, path)


@pytest.mark.parametrize("name", list(RANK_HEAD_VARIANTS))
def test_whole_model_with_every_rank_head(name: str) -> None:
    use_pos = RANK_HEAD_VARIANTS[name].position_channels != "none"
    cfg = tiny_config(name=name, use_pos=use_pos, obj_dim=28 if name == "SelfAttentionWithOtherPos" else 32)
    torch.manual_seed(0)
    model = lively(build_ppa(cfg))
    record: dict = {}
    pred = model.run_image(torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8), record=record)
    assert len(pred) > 0 and record["sor_logits"].shape == (len(pred), 5)
    assert ("sor_in_pos" in record) == use_pos
