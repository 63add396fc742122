"""An independent, functional reading of the *published* FACodec layout, for the import tests.

``published_shapes`` lists key names and shapes exactly as the released state_dicts use them (checked
against the published counts/shapes for the released configuration); ``random_published`` fills them
with random weights; the ``ref_*`` functions run the release's inference computation straight from
such a state_dict, with no ns3 module involved (including its batch-indexed positional quirk).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Layout:
    ngf: int = 32
    strides: tuple = (2, 4, 5, 5)
    dim: int = 256
    dec_ch: int = 1024
    redec_ch: int = 1280
    cb_size: int = 1024
    cb_dim: int = 8
    n_q: tuple = (1, 2, 3)
    layers: int = 4
    ffn: int = 1024
    kernel: int = 5
    phones: int = 5003
    speakers: int = 245200
    bins: int = 20
    n_mels: int = 80
    n_fft: int = 1024
    win: int = 800


def _act(p, c):
    return {f"{p}.act.alpha": (c,), f"{p}.act.beta": (c,), f"{p}.upsample.filter": (1, 1, 12), f"{p}.downsample.lowpass.filter": (1, 1, 12)}


def _wn(p, out, inp, k, transpose=False):
    if transpose:
        return {f"{p}.bias": (out,), f"{p}.weight_g": (inp, 1, 1), f"{p}.weight_v": (inp, out, k)}
    return {f"{p}.bias": (out,), f"{p}.weight_g": (out, 1, 1), f"{p}.weight_v": (out, inp, k)}


def _ru(p, c):
    return {**_act(f"{p}.block.0", c), **_wn(f"{p}.block.1", c, c, 7), **_act(f"{p}.block.2", c), **_wn(f"{p}.block.3", c, c, 1)}


def _generator(L, ch):
    s = _wn("model.0", ch, L.dim, 7)
    for i, st in enumerate(reversed(L.strides)):
        cin, cout = ch // 2**i, ch // 2 ** (i + 1)
        s.update(_act(f"model.{i + 1}.block.0", cin))
        s.update(_wn(f"model.{i + 1}.block.1", cout, cin, 2 * st, transpose=True))
        for j in range(3):
            s.update(_ru(f"model.{i + 1}.block.{j + 2}", cout))
    n = len(L.strides)
    s.update(_act(f"model.{n + 1}", ch // 2**n))
    s.update(_wn(f"model.{n + 2}", 1, ch // 2**n, 7))
    return s


def _transformer(p, L, cln=False):
    d = L.dim
    s = {f"{p}.position_emb.pe": (5000, 1, d)}

    def ln(q):
        return {f"{q}.style.weight": (2 * d, d), f"{q}.style.bias": (2 * d,)} if cln else {f"{q}.weight": (d,), f"{q}.bias": (d,)}

    for i in range(L.layers):
        q = f"{p}.layers.{i}"
        s.update(ln(f"{q}.ln_1"))
        s.update(ln(f"{q}.ln_2"))
        s.update({f"{q}.self_attn.in_proj_weight": (3 * d, d), f"{q}.self_attn.in_proj_bias": (3 * d,),
                  f"{q}.self_attn.out_proj.weight": (d, d), f"{q}.self_attn.out_proj.bias": (d,),
                  f"{q}.ffn.ffn_1.weight": (L.ffn, d, L.kernel), f"{q}.ffn.ffn_1.bias": (L.ffn,),
                  f"{q}.ffn.ffn_2.weight": (d, L.ffn), f"{q}.ffn.ffn_2.bias": (d,)})
    s.update(ln(f"{p}.last_ln"))
    return s


def _predictor(p, L, out, heads):
    s = {}
    for j in range(3):
        s.update(_ru(f"{p}.model.{j}", L.dim))
    s.update(_act(f"{p}.model.3", L.dim))
    for h in range(heads):
        s.update({f"{p}.heads.{h}.weight": (out, L.dim), f"{p}.heads.{h}.bias": (out,)})
    return s


def published_shapes(L: Layout, v2: bool = False) -> dict[str, dict[str, tuple]]:
    enc = _wn("block.0", L.ngf, 1, 7)
    d = L.ngf
    for i, st in enumerate(L.strides):
        d *= 2
        for j in range(3):
            enc.update(_ru(f"block.{i + 1}.block.{j}", d // 2))
        enc.update(_act(f"block.{i + 1}.block.3", d // 2))
        enc.update(_wn(f"block.{i + 1}.block.4", d, d // 2, 2 * st))
    n = len(L.strides)
    enc.update(_act(f"block.{n + 1}", d))
    enc.update(_wn(f"block.{n + 2}", L.dim, d, 3))
    if v2:
        enc.update({"mel_transform.mel_basis": (L.n_mels, L.n_fft // 2 + 1), "mel_transform.hann_window": (L.win,)})

    dec = {}
    for g, nq in enumerate(L.n_q):
        for i in range(nq):
            p = f"quantizer.{g}.layers.{i}"
            dec.update({f"{p}.in_proj.bias": (L.cb_dim,), f"{p}.in_proj.weight_g": (L.cb_dim, 1), f"{p}.in_proj.weight_v": (L.cb_dim, L.dim),
                        f"{p}.out_proj.bias": (L.dim,), f"{p}.out_proj.weight_g": (L.dim, 1), f"{p}.out_proj.weight_v": (L.dim, L.cb_dim),
                        f"{p}._codebook.weight": (L.cb_size, L.cb_dim)})
    dec.update(_generator(L, L.dec_ch))
    dec.update(_transformer("timbre_encoder", L))
    dec.update({"timbre_linear.weight": (2 * L.dim, L.dim), "timbre_linear.bias": (2 * L.dim,)})
    dec.update(_predictor("f0_predictor", L, 1, 2))
    dec.update(_predictor("phone_predictor", L, L.phones, 1))
    dec.update(_predictor("res_f0_predictor.1", L, 1, 2))
    dec.update(_predictor("res_phone_predictor.1", L, L.phones, 1))
    dec.update(_predictor("x_timbre_predictor.1", L, L.speakers, 1))
    if v2:
        dec.update({"melspec_linear.weight": (L.dim, L.bins), "melspec_linear.bias": (L.dim,)})
        dec.update(_transformer("melspec_encoder", L))

    red = {}
    for name, nq in zip(("prosody_embs", "content_embs", "residual_embs"), L.n_q):
        for i in range(nq):
            red[f"{name}.{i}.weight"] = (L.cb_size, L.dim)
    red.update(_generator(L, L.redec_ch))
    red.update({"timbre_linear.weight": (2 * L.dim, L.dim), "timbre_linear.bias": (2 * L.dim,)})
    red.update(_transformer("timbre_cond_prosody_enc", L, cln=True))
    return {"encoder": enc, "decoder": dec, "redecoder": red}


def position_table(d: int, n: int = 5000) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe = torch.zeros(n, 1, d, dtype=torch.float64)
    pe[:, 0, 0::2] = torch.sin(pos * freq)
    pe[:, 0, 1::2] = torch.cos(pos * freq)
    return pe.float()


def random_published(L: Layout, v2: bool = False, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for fname, shapes in published_shapes(L, v2).items():
        sd = {}
        for k, shp in shapes.items():
            if k.endswith("position_emb.pe"):
                t = position_table(shp[-1])
            elif k.endswith("filter"):
                t = torch.rand(shp, generator=g) + 0.1
                t = t / t.sum()
            elif k.endswith(("act.alpha", "act.beta")):
                t = 0.3 * torch.randn(shp, generator=g)
            elif k.endswith("weight_g"):
                t = 0.5 + 0.5 * torch.rand(shp, generator=g)
            elif k.endswith("mel_basis"):
                t = torch.rand(shp, generator=g) * 0.05
            elif k.endswith("hann_window"):
                t = torch.hann_window(shp[0])
            elif k.endswith("_embs.0.weight") or "_embs." in k or k.endswith("_codebook.weight"):
                t = torch.randn(shp, generator=g)
            elif k.endswith("bias"):
                t = 0.05 * torch.randn(shp, generator=g)
            elif len(shp) == 1:  # layer-norm gains
                t = 1.0 + 0.1 * torch.randn(shp, generator=g)
            else:
                fan_in = math.prod(shp[1:])
                t = torch.randn(shp, generator=g) / math.sqrt(fan_in)
            sd[k] = t
        out[fname] = sd
    return out


# ---- reference computation, straight from a published-layout state_dict ------------------------

def _w(sd, p):
    v, g = sd[f"{p}.weight_v"], sd[f"{p}.weight_g"]
    return v * (g / v.reshape(v.shape[0], -1).norm(dim=1).reshape(g.shape))


def _conv(sd, p, x, **kw):
    return F.conv1d(x, _w(sd, p), sd[f"{p}.bias"], **kw)


def _snake(sd, p, x):
    c = x.shape[1]
    y = F.pad(x, (5, 5), mode="replicate")
    y = 2 * F.conv_transpose1d(y, sd[f"{p}.upsample.filter"].expand(c, -1, -1), stride=2, groups=c)[..., 15:-15]
    a = sd[f"{p}.act.alpha"].exp()[None, :, None]
    b = sd[f"{p}.act.beta"].exp()[None, :, None]
    y = y + torch.sin(a * y) ** 2 / (b + 1e-9)
    y = F.pad(y, (5, 6), mode="replicate")
    return F.conv1d(y, sd[f"{p}.downsample.lowpass.filter"].expand(c, -1, -1), stride=2, groups=c)


def _ru_fwd(sd, p, x, dil):
    h = _snake(sd, f"{p}.block.0", x)
    h = _conv(sd, f"{p}.block.1", h, dilation=dil, padding=3 * dil)
    h = _snake(sd, f"{p}.block.2", h)
    return x + _conv(sd, f"{p}.block.3", h)


def ref_encode(sd, L, wav):
    """wav [B, T] -> [B, D, F] (no padding, as the release)."""
    x = _conv(sd, "block.0", wav[:, None], padding=3)
    for i, st in enumerate(L.strides):
        for j, dil in enumerate((1, 3, 9)):
            x = _ru_fwd(sd, f"block.{i + 1}.block.{j}", x, dil)
        x = _snake(sd, f"block.{i + 1}.block.3", x)
        x = _conv(sd, f"block.{i + 1}.block.4", x, stride=st, padding=math.ceil(st / 2))
    n = len(L.strides)
    return _conv(sd, f"block.{n + 2}", _snake(sd, f"block.{n + 1}", x), padding=1)


def _layer_norm(x, sd=None, p=None, cond=None):
    if cond is not None:  # style-adaptive
        gb = cond.mean(dim=1, keepdim=True) @ sd[f"{p}.style.weight"].t() + sd[f"{p}.style.bias"]
        gamma, beta = gb.chunk(2, dim=-1)
        return F.layer_norm(x, x.shape[-1:]) * gamma + beta
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"])


def ref_transformer(sd, p, x, heads=4, cond=None):
    """x [B, T, D]; positions indexed by *batch* position, as the release does."""
    b, t, d = x.shape
    x = x + sd[f"{p}.position_emb.pe"][:b]
    i = 0
    while f"{p}.layers.{i}.self_attn.in_proj_weight" in sd:
        q = f"{p}.layers.{i}"
        h = _layer_norm(x, sd, f"{q}.ln_1", cond)
        qkv = h @ sd[f"{q}.self_attn.in_proj_weight"].t() + sd[f"{q}.self_attn.in_proj_bias"]
        qq, kk, vv = (z.reshape(b, t, heads, d // heads).transpose(1, 2) for z in qkv.chunk(3, dim=-1))
        att = torch.softmax(qq @ kk.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ vv
        att = att.transpose(1, 2).reshape(b, t, d) @ sd[f"{q}.self_attn.out_proj.weight"].t() + sd[f"{q}.self_attn.out_proj.bias"]
        x = x + att
        h = _layer_norm(x, sd, f"{q}.ln_2", cond)
        w1 = sd[f"{q}.ffn.ffn_1.weight"]
        h = F.relu(F.conv1d(h.transpose(1, 2), w1, sd[f"{q}.ffn.ffn_1.bias"], padding=w1.shape[-1] // 2)).transpose(1, 2)
        x = x + h @ sd[f"{q}.ffn.ffn_2.weight"].t() + sd[f"{q}.ffn.ffn_2.bias"]
        i += 1
    return _layer_norm(x, sd, f"{p}.last_ln", cond)


def _linear_wn(sd, p, x):
    return F.linear(x, _w(sd, p), sd[f"{p}.bias"])


def _fvq(sd, p, x):
    """x [B, D, T] -> (quantized [B, D, T], codes [B, T]) via squared distance on unit vectors."""
    z = _linear_wn(sd, f"{p}.in_proj", x.transpose(1, 2))
    zn, cn = F.normalize(z, dim=-1), F.normalize(sd[f"{p}._codebook.weight"], dim=-1)
    dist = zn.pow(2).sum(-1, keepdim=True) - 2 * zn @ cn.t() + cn.pow(2).sum(-1)[None, None]
    codes = dist.argmin(dim=-1)
    zq = sd[f"{p}._codebook.weight"][codes]
    return _linear_wn(sd, f"{p}.out_proj", zq).transpose(1, 2), codes


def _rvq(sd, g, n, x):
    res, total, codes = x, 0, []
    for i in range(n):
        q, c = _fvq(sd, f"quantizer.{g}.layers.{i}", res)
        res, total = res - q, total + q
        codes.append(c)
    return total, codes


def ref_mel20(enc_sd, wav, bins=20, hop=200, n_fft=1024):
    pad = (n_fft - hop) // 2
    x = F.pad(wav[:, None], (pad, pad), mode="reflect")[:, 0]
    win = enc_sd["mel_transform.hann_window"]
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win.shape[0], window=win, center=False, return_complex=True)
    mag = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
    return torch.log(torch.clamp(enc_sd["mel_transform.mel_basis"] @ mag, min=1e-5))[:, :bins]


def ref_analyze(sd, L, x, prosody_feature=None):
    """Decoder ``vq=True``: -> (summed quantized [B, D, T], codes [6, B, T], speaker embedding [B, D])."""
    if prosody_feature is None:
        p_in = x
    else:
        h = prosody_feature.transpose(1, 2) @ sd["melspec_linear.weight"].t() + sd["melspec_linear.bias"]
        p_in = ref_transformer(sd, "melspec_encoder", h).transpose(1, 2)
    qp, cp = _rvq(sd, 0, L.n_q[0], p_in)
    qc, cc = _rvq(sd, 1, L.n_q[1], x)
    qr, cr = _rvq(sd, 2, L.n_q[2], x - (qp + qc))
    spk = ref_transformer(sd, "timbre_encoder", x.transpose(1, 2)).mean(dim=1)
    return qp + qc + qr, torch.stack(cp + cc + cr), spk


def ref_vq2emb(sd, L, codes, use_residual=True):
    out = 0
    groups = [(0, range(0, L.n_q[0])), (1, range(L.n_q[0], L.n_q[0] + L.n_q[1]))]
    if use_residual:
        groups.append((2, range(L.n_q[0] + L.n_q[1], sum(L.n_q))))
    for g, rows in groups:
        for i, r in enumerate(rows):
            zq = sd[f"quantizer.{g}.layers.{i}._codebook.weight"][codes[r]]
            out = out + _linear_wn(sd, f"quantizer.{g}.layers.{i}.out_proj", zq).transpose(1, 2)
    return out


def ref_generate(sd, L, x, spk):
    """``inference``: conditional LN with the speaker embedding, then the generator. -> [B, 1, 200 T]"""
    gb = spk @ sd["timbre_linear.weight"].t() + sd["timbre_linear.bias"]
    gamma, beta = gb[:, :, None].chunk(2, dim=1)
    x = F.layer_norm(x.transpose(1, 2), x.shape[1:2]).transpose(1, 2) * gamma + beta
    x = _conv(sd, "model.0", x, padding=3)
    for i, st in enumerate(reversed(L.strides)):
        p = f"model.{i + 1}.block"
        x = _snake(sd, f"{p}.0", x)
        x = F.conv_transpose1d(x, _w(sd, f"{p}.1"), sd[f"{p}.1.bias"], stride=st, padding=math.ceil(st / 2), output_padding=st % 2)
        for j, dil in enumerate((1, 3, 9)):
            x = _ru_fwd(sd, f"{p}.{j + 2}", x, dil)
    n = len(L.strides)
    return torch.tanh(_conv(sd, f"model.{n + 2}", _snake(sd, f"model.{n + 1}", x), padding=3))


def ref_redecoder_vq2emb(sd, L, codes, spk, use_residual=False):
    x = sd["prosody_embs.0.weight"][codes[0]]
    x = ref_transformer(sd, "timbre_cond_prosody_enc", x, cond=spk[:, None].expand(-1, x.shape[1], -1))
    for i in range(L.n_q[1]):
        x = x + sd[f"content_embs.{i}.weight"][codes[L.n_q[0] + i]]
    if use_residual:
        for i in range(L.n_q[2]):
            x = x + sd[f"residual_embs.{i}.weight"][codes[L.n_q[0] + L.n_q[1] + i]]
    return x.transpose(1, 2)
