"""Attention, MLP heads, drop path and positional encoding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from salrank.modeling.layers import MLP, Attention, DropPath, FeedForward, LearnablePE, validity_mask_to_bias


def official_attention(att: Attention, q, k, v, m=None):
    """SAM's / PoseSOR's Attention.forward, literally (PoseSOR's ``m`` rule included)."""
    q, k, v = att.q_proj(q), att.k_proj(k), att.v_proj(v)

    def sep(x):
        b, n, c = x.shape
        return x.reshape(b, n, att.num_heads, c // att.num_heads).transpose(1, 2)

    q, k, v = sep(q), sep(k), sep(v)
    attn = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    if m is not None:
        m = m.clone()
        m[torch.where(m.sum(dim=-1) < 0.5)] = 1.0
        attn = attn + (1.0 - m) * -1e9
    out = torch.softmax(attn, dim=-1) @ v
    b, h, n, d = out.shape
    return att.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


def realistic(*shape, gen):
    return F.layer_norm(torch.randn(*shape, generator=gen), shape[-1:])  # LayerNorm'd tokens, as in the models


@pytest.mark.parametrize(("nq", "nk", "heads", "rate"), [(12, 300, 4, 1), (100, 625, 8, 1), (7, 7, 8, 2)])
def test_attention_fused_matches_official_formula(nq, nk, heads, rate):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    att = Attention(64, heads, downsample_rate=rate)
    q, k = realistic(2, nq, 64, gen=gen), realistic(2, nk, 64, gen=gen)
    with torch.no_grad():
        ref = official_attention(att, q, k, k)
        fused = att(q, k, k)
        att.fused = False
        explicit = att(q, k, k)
    torch.testing.assert_close(fused, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(explicit, ref, atol=0, rtol=0)
    assert fused.shape == (2, nq, 64)
    assert set(att.state_dict()) == {f"{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")}
    assert att.q_proj.out_features == 64 // rate


def test_attention_masks():
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    att = Attention(32, 4)
    x = realistic(2, 10, 32, gen=gen)
    flags = torch.ones(2, 10, 1)
    flags[0, 6:] = 0.0
    flags[1, :] = 0.0  # every row of image 1 empty -> all ones (PoseSOR rule)
    valid = (flags @ flags.transpose(-1, -2)).unsqueeze(1)  # B, 1, N, N as PoseSOR builds it
    before = valid.clone()
    bias = validity_mask_to_bias(valid)
    assert torch.equal(valid, before)  # the argument is not modified
    with torch.no_grad():
        ref = official_attention(att, x, x, x, valid)
        torch.testing.assert_close(att(x, x, x, attn_mask=bias), ref, atol=1e-6, rtol=1e-6)
        att.fused = False
        torch.testing.assert_close(att(x, x, x, attn_mask=bias), ref, atol=0, rtol=0)
        # boolean masks: True = may attend, in both paths
        keep = valid.bool() | (valid.sum(-1, keepdim=True) < 0.5)
        explicit = att(x, x, x, attn_mask=keep)
        att.fused = True
        torch.testing.assert_close(att(x, x, x, attn_mask=keep), explicit, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(explicit, ref, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError):
        Attention(30, 4)


def test_mlp_and_feedforward():
    mlp = MLP(16, 32, 4, 3)
    assert [tuple(l.weight.shape) for l in mlp.layers] == [(32, 16), (32, 32), (4, 32)]
    x = torch.randn(2, 5, 16)
    ref = mlp.layers[2](F.relu(mlp.layers[1](F.relu(mlp.layers[0](x)))))
    assert torch.equal(mlp(x), ref)
    assert set(mlp.state_dict()) == {f"layers.{i}.{w}" for i in range(3) for w in ("weight", "bias")}
    one = MLP(16, 99, 8, 1)
    assert torch.equal(one(x), one.layers[0](x))
    with pytest.raises(ValueError):
        MLP(4, 4, 4, 0)

    ffn = FeedForward(16, 64)
    assert set(ffn.state_dict()) == {"lin1.weight", "lin1.bias", "lin2.weight", "lin2.bias"}
    assert torch.equal(ffn(x), ffn.lin2(F.gelu(ffn.lin1(x))))
    relu = FeedForward(16, 64, act=torch.nn.ReLU)
    assert torch.equal(relu(x), relu.lin2(F.relu(relu.lin1(x))))


def test_drop_path():
    x = torch.ones(1000, 3, 2)
    layer = DropPath(0.25).train()
    torch.manual_seed(0)
    y = layer(x)
    per_sample = y[:, 0, 0]
    assert set(per_sample.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert (y == y[:, :1, :1]).all()  # one draw per sample
    assert 0.15 < (per_sample == 0).float().mean() < 0.35
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(DropPath(0.0).train()(x), x)


def test_learnable_pe():
    torch.manual_seed(0)
    pe = LearnablePE(8)
    assert pe.weight.shape == (8, 25, 25) and pe.weight.abs().max() <= 2.0  # trunc-normal, cut at +-2
    ref = F.interpolate(pe.weight.unsqueeze(0), size=(10, 40), mode="bilinear", align_corners=False)[0]
    assert torch.equal(pe.for_size(10, 40), ref)
    assert torch.equal(pe.for_size(25, 25), pe.weight)
    out = pe(torch.zeros(3, 8, 10, 40))
    assert out.shape == (3, 8, 10, 40) and torch.equal(out[2], ref)
    assert LearnablePE.official_key_rules("pe_layer.", "pos_embed.") == [(r"pe_layer\.ape", "pos_embed.weight")]
