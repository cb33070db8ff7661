"""PoseSOR's components on their own: query selection, the factorised forms, padding, ablations, training use."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from salrank.modeling.layers import Attention
from salrank.modeling.posesor import (
    PAI_VARIANTS,
    PDR_VARIANTS,
    build_posesor,
    gather_query_slots,
    posesor_tiny_config,
    select_hit_queries,
)
from salrank.modeling.posesor.pose_interaction import gated_cross_attention
from salrank.modeling.posesor.pose_ranking import PoseDrivenRanking
from salrank.modeling.posesor.query_selection import hit_threshold, slot_positions


def test_hit_selection_keeps_the_best_query_and_everything_above_the_threshold():
    logits = torch.logit(torch.tensor([[0.05, 0.3, 0.09, 0.2], [0.01, 0.02, 0.05, 0.03]])).unsqueeze(-1)
    bi, qi, ti, n = select_hit_queries(logits, 0.1)
    assert bi.tolist() == [0, 0, 1] and qi.tolist() == [1, 3, 2] and ti.tolist() == [0, 1, 0] and n == 2
    thr = hit_threshold(logits, 0.1)
    assert thr.shape == (2, 1, 1)
    assert abs(float(thr[1]) - (0.05 - 1e-6)) < 1e-7


def test_slot_positions():
    assert slot_positions(torch.tensor([0, 0, 0, 1, 1, 3])).tolist() == [0, 1, 2, 0, 1, 0]
    assert slot_positions(torch.tensor([], dtype=torch.long)).tolist() == []


def test_padding_draws_random_pe_like_the_official_code():
    q, qpe = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    bi, qi, ti = torch.tensor([0, 0, 1]), torch.tensor([4, 1, 2]), torch.tensor([0, 1, 0])
    torch.manual_seed(0)
    slots = gather_query_slots(q, qpe, bi, qi, ti, 2)
    after = torch.rand(1)
    torch.manual_seed(0)
    expected_pe = torch.randn(2, 2, 8)  # the whole tensor is drawn, then real slots are overwritten
    assert torch.equal(torch.rand(1), after)  # the same amount of global random state was consumed
    assert torch.equal(slots.qpe[1, 1], expected_pe[1, 1])
    assert torch.equal(slots.q[0], q[0, [4, 1]]) and torch.equal(slots.qpe[0], qpe[0, [4, 1]])
    assert slots.q[1, 1].abs().sum() == 0 and slots.mask[:, :, 0].tolist() == [[1.0, 1.0], [1.0, 0.0]]
    zeros = gather_query_slots(q, qpe, bi, qi, ti, 2, pad_pe="zeros")
    assert zeros.qpe[1, 1].abs().sum() == 0
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(gather_query_slots(q, qpe, bi, qi, ti, 2, generator=g1).qpe, gather_query_slots(q, qpe, bi, qi, ti, 2, generator=g2).qpe)


def test_factorised_gated_attention_equals_the_explicit_one():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    tokens = torch.randn(2, 5, 18, 32, requires_grad=True)
    feat, pe = torch.randn(2, 48, 32), torch.randn(2, 48, 32)
    gate = torch.rand(2, 5, 48)
    fast = gated_cross_attention(attn, tokens, feat, pe, gate, "factorized")
    slow = gated_cross_attention(attn, tokens, feat, pe, gate, "explicit")
    assert torch.allclose(fast, slow, atol=1e-5, rtol=1e-5)
    fast.sum().backward()
    assert tokens.grad is not None and torch.isfinite(tokens.grad).all() and attn.k_proj.weight.grad is not None
    assert gated_cross_attention(attn, tokens[:, :0], feat, pe, gate[:, :0]).shape == (2, 0, 18, 32)


def test_factorised_pairwise_term_equals_the_explicit_one():
    torch.manual_seed(0)
    pdr = PoseDrivenRanking(embed_dim=16, hidden_dim=24)
    x = torch.randn(2, 7, 16)
    fast = pdr.pairwise_mean(x)
    pdr.pairwise = "explicit"
    assert torch.allclose(fast, pdr.pairwise_mean(x), atol=1e-5)


def tiny(variant: str = "full", **kw):
    torch.manual_seed(0)
    model = build_posesor(posesor_tiny_config(variant, **kw))
    model.cfg.input.test_image_size = 64  # small and fast; the model works at any multiple of 32
    return model


@pytest.mark.parametrize("pai", list(PAI_VARIANTS))
def test_every_pai_ablation_runs(pai):
    model = tiny(pai)
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    result = model.predict([image], ["x"])[0]
    assert result.keypoints.shape == (len(result), 17, 3) and result.masks.shape[1:] == (50, 70)


@pytest.mark.parametrize("pdr", [n for n in PDR_VARIANTS if n != "PDR"])
def test_every_pdr_ablation_runs(pdr):
    cfg = posesor_tiny_config()
    cfg = dataclasses.replace(cfg, pdr=dataclasses.replace(cfg.pdr, **PDR_VARIANTS[pdr]), input=dataclasses.replace(cfg.input, test_image_size=64))
    model = build_posesor(cfg)
    image = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    assert len(model.predict([image])[0]) >= 1


def test_padded_slots_do_not_change_pai_for_real_objects():
    model = tiny()
    x = model.normalize(torch.rand(2, 3, 64, 64) * 255)
    with torch.no_grad():
        sis, feats = model(x)
        q, qpe = sis.q, sis.qpe
        # image 0 has 3 objects, image 1 only 1 (two padded slots)
        bi, qi, ti = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 5, 7, 2]), torch.tensor([0, 1, 2, 0])
        padded = gather_query_slots(q, qpe, bi, qi, ti, 3)
        pai = model.pose_interaction(padded.q, padded.qpe, feats.feats, feats.pe, padded.mask)
        alone = gather_query_slots(q[1:], qpe[1:], torch.tensor([0]), torch.tensor([2]), torch.tensor([0]), 1)
        feats1 = {k: v[1:] for k, v in feats.feats.items()}
        pe1 = {k: v[1:] for k, v in feats.pe.items()}
        pai_alone = model.pose_interaction(alone.q, alone.qpe, feats1, pe1, alone.mask)
    assert torch.allclose(pai.q[1, 0], pai_alone.q[0, 0], atol=1e-5)
    assert torch.allclose(pai.out.keypoints[1, 0], pai_alone.out.keypoints[0, 0], atol=1e-5)


def test_training_use_gradients_through_sis_pai_pdr():
    model = tiny()
    model.train()
    x = model.normalize(torch.rand(2, 3, 64, 64) * 255)
    sis, feats = model(x)
    assert len(sis.predictions) == 7 and sis.out.masks.shape == (2, 12, 16, 16)  # initial + 6 blocks
    # as after Hungarian matching: GT t of image b gets the query matched to it, in slot t
    bi, qi, ti = torch.tensor([0, 0, 1]), torch.tensor([3, 0, 9]), torch.tensor([0, 1, 0])
    slots = gather_query_slots(sis.q, sis.qpe, bi, qi, ti, 2)
    pai, pdr = model.interact_and_rank(slots, feats)
    assert len(pai.predictions) == 4 and pai.out.heatmaps.shape == (2, 2, 17, 16, 16)
    assert pdr.ranks.shape == (2, 2, 20) and pdr.partitions.shape == (2, 2, 8, 8)
    loss = sis.out.masks.mean() + pai.out.heatmaps.mean() + pai.out.keypoints.mean() + pdr.ranks.mean() + pdr.partitions.mean()
    loss.backward()
    for name in ("backbone.patch_embed.proj.weight", "sis_decoder.query_pe", "pose_interaction.joint_pe", "pose_ranking.head.rank_head.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all(), name


def test_predict_outputs_and_options():
    model = tiny()
    image = np.random.default_rng(2).integers(0, 255, (61, 83, 3), dtype=np.uint8)
    result = model.predict([image], ["photo"], return_partitions=True, return_heatmaps=True)[0]
    n = len(result)
    assert result.model == "posesor" and result.image_name == "photo" and n >= 1
    assert result.masks.dtype == bool and result.masks.shape == (n, 61, 83)
    assert np.all(np.diff(result.saliency) <= 0)  # rank order = decreasing rank score
    kp = result.keypoints
    assert kp.shape == (n, 17, 3) and (kp[..., 0] >= 0).all() and (kp[..., 0] < 83).all() and (kp[..., 1] < 61).all()
    assert np.array_equal(kp[..., :2], np.round(kp[..., :2]))  # heatmap argmax: whole pixels
    assert ((kp[..., 2] >= 0) & (kp[..., 2] <= 1)).all()
    ex = result.extras
    assert ex["explicit_keypoints"].shape == (n, 17, 3) and ex["query_index"].shape == (n,)
    assert ex["partitions"].shape == (n, 8, 8) and ex["partition_logits"].shape == (n, 8, 8)
    assert ex["heatmaps"].shape == (n, 17, 16, 16) and ex["rank_probabilities"].shape == (n, 20)
    assert sorted(q for g in ex["merged_queries"] for q in g) == sorted({q for g in ex["merged_queries"] for q in g})
    plain = model.predict([image])[0]
    assert "partitions" not in plain.extras and "heatmaps" not in plain.extras
    with pytest.raises(Exception, match="RGB uint8"):
        model.predict([image.astype(np.float32)])
