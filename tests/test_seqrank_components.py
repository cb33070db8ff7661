"""SeqRank's parts on their own: batched RoIAlign, the SRM's fast paths and options, the read-out loop,
the training path, the pluggable backbones and positional encodings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salrank.modeling.registry import build_model
from salrank.modeling.seqrank import (
    BackboneConfig,
    RankingTrace,
    SeqRank,
    build_seqrank,
    seqrank_tiny_config,
    sequential_readout,
)
from salrank.modeling.seqrank.config import (
    RankingConfig,
    ReadoutConfig,
    TransformerConfig,
)
from salrank.modeling.seqrank.ranking_module import (
    SequentialRankingModule,
    visit_indicators,
)
from salrank.modeling.seqrank.roi_readout import roi_align_batched
from salrank.ops import roi_align
from salrank.ops.boxes import box_cxcyhw_to_xyxy

pytestmark = pytest.mark.usefixtures("one_thread")


def photo(seed=0, h=50, w=70):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_batched_roi_align_is_torchvision_roi_align(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(5, 13, 17, generator=g)
    corners = torch.rand(40, 2, 2, generator=g) * torch.tensor([19.0, 15.0]) - 1.0  # some outside the map
    boxes = torch.cat([corners.min(1).values, corners.max(1).values], dim=1)
    boxes[0] = torch.tensor([3.0, 4.0, 3.2, 4.1])  # tiny box
    boxes[1] = torch.tensor([0.0, 0.0, 17.0, 13.0])  # the whole map
    boxes[2] = torch.tensor([-5.0, -5.0, -2.0, -3.0])  # entirely outside
    for size in [(1, 1), (2, 2), (3, 3), (2, 5)]:
        ours = roi_align_batched(feature, boxes, size, spatial_scale=1.0, sampling_ratio=sampling_ratio, aligned=aligned)
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)
        ref = roi_align(feature[None], rois, size, spatial_scale=1.0, sampling_ratio=sampling_ratio, aligned=aligned)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_batched_roi_align_passes_gradients_to_features():
    feature = torch.randn(4, 9, 9, requires_grad=True)
    boxes = torch.tensor([[1.0, 1.0, 6.0, 5.0], [0.0, 2.0, 9.0, 9.0]])
    (roi_align_batched(feature, boxes, (3, 3)) ** 2).sum().backward()
    ref_feature = feature.detach().clone().requires_grad_()
    rois = torch.cat([torch.zeros(2, 1), boxes], dim=1)
    (roi_align(ref_feature[None], rois, (3, 3)) ** 2).sum().backward()
    torch.testing.assert_close(feature.grad, ref_feature.grad, atol=1e-5, rtol=1e-5)


def test_boxes_are_cx_cy_h_w():
    # the official head predicts (cx, cy, h, w): height before width
    assert box_cxcyhw_to_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.6])).tolist() == pytest.approx([0.2, 0.4, 0.8, 0.6])


def test_visit_indicators_follow_the_official_rule():
    visits = torch.tensor([[0.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 3.0, 0.0]])
    gaze, prev = visit_indicators(visits)
    assert gaze[..., 0].tolist() == [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]]
    assert prev[..., 0].tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 0]]


def _srm_inputs(b=2, nq=6, hw=10, c=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, n, c, generator=g) for n in (nq, nq, hw, hw)]


def test_srm_fast_step_equals_the_official_formulas():
    torch.manual_seed(0)
    srm = SequentialRankingModule(16, 2, 32, num_blocks=3).eval()
    q, qpe, z, zpe = _srm_inputs()
    visits = torch.tensor([[0.0, 1, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        ctx = srm.prepare(q, qpe, z, zpe)
        fast = srm.step(ctx, visits)
        for block in srm.blocks:  # reference: concatenated MLP, explicit attention, computed no-op gate
            block.fast = False
            for attn in (block.query_attn, block.image_cross_attn, block.query_cross_attn, block.query_attn2):
                attn.fused = False
        reference = srm(q, qpe, z, zpe, visits)
        selected = srm.step(ctx.select(torch.tensor([1])), visits[1:])
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(selected, reference[1:], atol=1e-5, rtol=1e-5)
    # the official gate is exactly a no-op: its weights do not matter
    with torch.no_grad():
        for block in srm.blocks:
            block.gate.weight.normal_()
        torch.testing.assert_close(srm(q, qpe, z, zpe, visits), reference, atol=0, rtol=0)


def test_gate_options_change_the_function():
    q, qpe, z, zpe = _srm_inputs()
    visits = torch.zeros(2, 6)
    outs = {}
    for gate in ("official", "softmax", "sigmoid"):
        torch.manual_seed(0)
        srm = SequentialRankingModule(16, 2, 32, num_blocks=2, gate=gate).eval()
        with torch.no_grad():
            outs[gate] = srm(q, qpe, z, zpe, visits)
    assert not torch.allclose(outs["official"], outs["softmax"]) and not torch.allclose(outs["official"], outs["sigmoid"])


def _scripted_step(table):
    """A fake SRM whose logits depend on the number of visited queries (and count its calls)."""
    calls = []

    def step(visits, rows):
        calls.append(rows.tolist())
        return torch.stack([table[int((visits[i] > 0.5).sum())] for i in range(len(rows))])

    return step, calls


def test_readout_stops_at_thresholds_and_reselects_like_the_official_loop():
    logit = torch.logit
    table = {
        0: logit(torch.tensor([0.9, 0.2, 0.1, 0.05])),
        1: logit(torch.tensor([0.95, 0.3, 0.1, 0.05])),  # re-selects query 0
        2: logit(torch.tensor([0.1, 0.6, 0.0005, 0.0002])),
        3: logit(torch.tensor([0.1, 0.2, 0.0005, 0.05])),
    }
    objectness = logit(torch.tensor([[0.9, 0.8, 0.7, 0.6]]))
    step, calls = _scripted_step(table)
    [ranked] = sequential_readout(step, objectness, memoize=False)
    assert ranked.query_index == [0] * 4  # re-selecting the fixated query never changes the state
    assert len(calls) == 4 and ranked.srm_calls == 4
    step, calls = _scripted_step(table)
    [memo] = sequential_readout(step, objectness)  # memoised: same result, one SRM call per state
    assert memo.query_index == ranked.query_index and memo.saliency == ranked.saliency and len(calls) == 2
    [excluded] = sequential_readout(_scripted_step(table)[0], objectness, exclude_visited=True)
    assert excluded.query_index == [0, 1]  # step 3: the best unvisited query has saliency 0.0005 < 0.001: stop
    assert excluded.srm_calls == 3 and excluded.saliency == pytest.approx([0.9, 0.3], abs=1e-6)
    assert excluded.objectness == pytest.approx([0.9, 0.8], abs=1e-6)
    low_objectness = logit(torch.tensor([[0.0009, 0.8, 0.7, 0.6]]))
    [stopped] = sequential_readout(_scripted_step(table)[0], low_objectness)
    assert stopped.query_index == [] and stopped.srm_calls == 1
    [capped] = sequential_readout(_scripted_step(table)[0], objectness, max_steps=2)
    assert len(capped) == 2


def test_readout_batches_are_independent_and_memo_is_exact():
    torch.manual_seed(0)
    srm = SequentialRankingModule(16, 2, 32, num_blocks=2).eval()
    q, qpe, z, zpe = _srm_inputs(b=3, nq=8)
    objectness = torch.randn(3, 8)
    ctx = srm.prepare(q, qpe, z, zpe)

    def step(visits, rows):
        return srm.step(ctx.select(rows), visits)

    with torch.no_grad():
        trace = RankingTrace()
        plain = sequential_readout(step, objectness, memoize=False, drop_finished=False, trace=trace)
        fast = sequential_readout(step, objectness)
        alone = [sequential_readout(lambda v, r, i=i: step(v, torch.tensor([i])), objectness[i : i + 1])[0] for i in range(3)]
    for a, b, c in zip(plain, fast, alone):
        assert a.query_index == b.query_index == c.query_index
        np.testing.assert_allclose(a.saliency, b.saliency, atol=1e-6)
        np.testing.assert_allclose(a.saliency, c.saliency, atol=1e-6)
    assert trace.stacked(0)["saliency_logits"].shape == (len(trace.saliency_logits), 8)


def test_training_path_has_gradients_and_dropout():
    cfg = seqrank_tiny_config(common=TransformerConfig(embed_dim=16, num_heads=2, hidden_dim=32, num_queries=8, dropout_attn=0.5, dropout_ffn=0.5))
    model = build_seqrank(cfg).train()
    images = model.normalize(torch.rand(2, 3, 64, 64) * 255)
    torch.manual_seed(1)
    out = model(images)
    assert all(p.masks is not None and p.objectness is not None for p in out.fovea.predictions)
    visits = torch.tensor([[0.0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
    sal = model.saliency_logits(out, visits)
    assert sal.shape == (2, 8)
    loss = out.fovea.final.masks.square().mean() + sal.square().mean() + sum(p.boxes.square().mean() for p in out.fovea.predictions)
    loss.backward()
    for name in ("backbone.patch_embed.proj.weight", "neck.lateral_convs.1.conv.weight", "fovea.samplers.2.grid_embed",
                 "fovea.blocks.0.cell_proj.linear.weight", "ranking.blocks.1.peripheral.layers.0.weight", "pos_embed.weight"):  # fmt: skip
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    torch.manual_seed(2)
    again = model(images)
    assert not torch.equal(again.fovea.queries, out.fovea.queries)  # dropout is active in training
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images).fovea.queries, model(images).fovea.queries)


@pytest.mark.parametrize(
    "overrides",
    [
        {"backbone": BackboneConfig.efficientnet("lite0")},
        {"backbone": BackboneConfig.resnet_official("ResNeXt50")},
        {"position_encoding": "SINE"},
        {"position_encoding": "RANDOM", "neck": "FrcPN"},
        {"ranking": RankingConfig(num_blocks=1, gate="sigmoid"), "readout": ReadoutConfig(exclude_visited=True)},
    ],
    ids=["efficientnet-lite0", "resnext50", "sine-pe", "random-pe-frcpn", "improvements"],
)
def test_configurable_parts_build_and_predict(overrides):
    model = build_model("seqrank", seqrank_tiny_config(**overrides))
    assert isinstance(model, SeqRank) and not model.training
    [result] = model.predict([photo()], ["p"])
    assert result.masks.shape[1:] == (50, 70) and 0 < len(result) <= 8
    assert result.model == "seqrank" if model.variant == "custom" else result.model.startswith("seqrank-")
    if model.cfg.readout.exclude_visited:
        assert len(set(result.extras["query_index"].tolist())) == len(result)
    if overrides.get("position_encoding") == "RANDOM":
        assert "pos_embed.gaussian_matrix" in model.state_dict()


def test_predict_rejects_bad_arrays():
    from salrank.errors import InputError

    model = build_seqrank(seqrank_tiny_config())
    with pytest.raises(InputError, match="image b"):
        model.predict([photo(), np.zeros((5, 5), np.uint8)], ["a", "b"])
    assert model.predict([]) == []
