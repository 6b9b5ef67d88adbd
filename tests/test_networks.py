"""The networks against the original implementation's layout: keys, shapes, parameter counts."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.errors import NotAGeneratorError
from cyclegan_convert.networks import (normalise, HalfPrecisionGenerator, LatticeNotch, NarrowConv2d, NLayerDiscriminator,
                                       ResizeConv, ResnetGenerator, init_weights, with_narrow_convs)
from cyclegan_convert.weights import infer_arch, load_generator

from conftest import PHOTOS, psnr


def original_generator_keys(n_blocks: int, dropout: bool = False) -> list[str]:
    """The keys of the original resnet generator, spelled out independently of our code."""
    second = 6 if dropout else 5
    keys = []
    for i in (1, 4, 7):
        keys += [f"model.{i}.weight", f"model.{i}.bias"]
    for b in range(10, 10 + n_blocks):
        for c in (1, second):
            keys += [f"model.{b}.conv_block.{c}.weight", f"model.{b}.conv_block.{c}.bias"]
    up = 10 + n_blocks
    for i in (up, up + 3, up + 7):
        keys += [f"model.{i}.weight", f"model.{i}.bias"]
    return keys


@pytest.mark.parametrize("n_blocks", [6, 9])
def test_generator_keys_match_original(n_blocks):
    g = ResnetGenerator(n_blocks=n_blocks)
    assert sorted(g.state_dict()) == sorted(original_generator_keys(n_blocks))


def test_generator_size_and_shapes():
    g = ResnetGenerator()
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    sd = g.state_dict()
    assert sd["model.1.weight"].shape == (64, 3, 7, 7)
    assert sd["model.19.weight"].shape == (256, 128, 3, 3)  # ConvTranspose: (in, out, k, k)
    assert sd["model.26.weight"].shape == (3, 64, 7, 7)


def test_generator_output_size_rounds_up_to_multiple_of_4():
    g = ResnetGenerator(ngf=4, n_blocks=1).eval()
    with torch.no_grad():
        assert g(torch.zeros(1, 3, 30, 41)).shape == (1, 3, 32, 44)
        y = g(torch.randn(2, 3, 32, 48))
    assert y.shape == (2, 3, 32, 48) and y.abs().max() <= 1


def test_discriminator_keys_and_patch_output():
    d = NLayerDiscriminator()
    assert sorted(d.state_dict()) == sorted(f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias"))
    assert sum(p.numel() for p in d.parameters()) == 2_764_737
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_init_is_normal_002_with_zero_bias():
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator())
    w = g.state_dict()["model.10.conv_block.1.weight"]
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert all(v.abs().sum() == 0 for k, v in g.state_dict().items() if k.endswith("bias"))


def test_loads_original_file_with_legacy_buffers_and_dropout(tmp_path):
    torch.manual_seed(1)
    src = ResnetGenerator(ngf=8, n_blocks=3, use_dropout=True)
    sd = dict(src.state_dict())
    assert "model.10.conv_block.6.weight" in sd
    sd["model.2.running_mean"] = torch.zeros(8)  # what pre-0.4 PyTorch saved for InstanceNorm
    sd["model.2.running_var"] = torch.ones(8)
    sd["model.2.num_batches_tracked"] = torch.tensor(0)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    g = load_generator(tmp_path / "latest_net_G_A.pth")
    assert not g.training and (g.ngf, g.n_blocks, g.use_dropout) == (8, 3, True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(g(x), src.eval()(x))


def test_refuses_discriminator_and_garbage(tmp_path):
    torch.save(NLayerDiscriminator(ndf=8).state_dict(), tmp_path / "d.pth")
    with pytest.raises(NotAGeneratorError, match="discriminator"):
        load_generator(tmp_path / "d.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(NotAGeneratorError, match="junk.pth"):
        load_generator(tmp_path / "junk.pth")


def test_arch_from_keys():
    arch = infer_arch(ResnetGenerator(ngf=16, n_blocks=6).state_dict())
    assert (arch.ngf, arch.n_blocks, arch.name) == (16, 6, "resnet_6blocks")


def test_resize_upsampling_keeps_the_layer_indices_and_is_read_off_the_keys(tmp_path):
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize"))
    sd = net.state_dict()
    transpose_keys = set(ResnetGenerator(ngf=8, n_blocks=2).state_dict())
    # the same keys except the two upsampling layers, which gain '.conv'
    assert {k.replace(".conv.", ".") for k in sd} == transpose_keys
    assert {k for k in sd if ".conv." in k} == {"model.12.conv.weight", "model.12.conv.bias",
                                               "model.15.conv.weight", "model.15.conv.bias"}
    arch = infer_arch(sd)
    assert (arch.upsample, arch.name) == ("resize", "resnet_2blocks_resize")
    assert infer_arch(ResnetGenerator(ngf=8, n_blocks=2).state_dict()).upsample == "transpose"
    torch.save(sd, tmp_path / "g.pth")
    loaded = load_generator(tmp_path / "g.pth")
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), net.eval()(x))
    assert loaded(x).shape == (1, 3, 36, 44)


@pytest.mark.parametrize("upsample", ["transpose", "resize", "bilinear"])
def test_checkerboard_of_transposed_convolutions_and_none_with_resize(upsample):
    """On a flat image, far from the borders, a stride-2 transposed convolution paints a 2-pixel
    pattern whatever its weights (its kernel overlaps unevenly); nearest or bilinear x2 + conv paint
    none (a flat image cannot tell those two apart: see the ramp test below)."""
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=1, upsample=upsample)).eval()
    with torch.no_grad():
        out = net(torch.full((1, 3, 128, 128), 0.3))[0, :, 56:72, 56:72]  # the borders' influence ends well before
    even_odd = (out[:, 0::2, 0::2] - out[:, 1::2, 1::2]).abs().max().item()
    if upsample == "transpose":
        assert even_odd > 1e-3
    else:
        assert (out - out[:, :1, :1]).abs().max().item() < 1e-5


def _second_difference(y: torch.Tensor) -> float:
    """Largest |y[x-1] - 2 y[x] + y[x+1]| along both axes: zero on an affine image, large on a 2-px grain."""
    dx = y[..., :, :-2] - 2 * y[..., :, 1:-1] + y[..., :, 2:]
    dy = y[..., :-2, :] - 2 * y[..., 1:-1, :] + y[..., 2:, :]
    return max(dx.abs().max().item(), dy.abs().max().item())


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_bilinear_resize_conv_paints_no_grain_on_a_ramp_where_nearest_does(mode):
    """A flat image cannot show it; a ramp can. Nearest x2 repeats each pixel, so a kernel that is not
    symmetric (any learned or random one) sees another mix of neighbours at even and odd output
    pixels: a 2-pixel pattern on any gradient. Bilinear x2 keeps a ramp a ramp, and a convolution of a
    ramp is a ramp: no pattern, whatever the weights."""
    torch.manual_seed(0)
    up = ResizeConv(4, 4, mode)
    torch.nn.init.normal_(getattr(up, up.conv_name).weight, 0.0, 0.02)  # the training init: asymmetric
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    ramp = (xx / 16 + yy / 32 - 0.5).expand(1, 4, 16, 16)
    with torch.no_grad():
        out = up(ramp)[0, :, 4:-4, 4:-4]  # away from the borders' padding
    assert out.shape == (4, 24, 24)
    if mode == "nearest":
        assert _second_difference(out) > 1e-3
    else:
        assert _second_difference(out) < 1e-5


def _photo(size: tuple[int, int], i: int = 0) -> torch.Tensor:
    rgb = np.asarray(Image.open(PHOTOS[i]).convert("RGB").resize(size), dtype=np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1


def _nyquist_share(y: torch.Tensor) -> float:
    """The share of an image's energy (DC left out) in its top row and column of the 2-D spectrum:
    the frequencies of a 2-pixel pattern."""
    p = torch.fft.fft2(y).abs() ** 2
    h, w = y.shape[-2:]
    return ((p[..., h // 2, :].sum() + p[..., :, w // 2].sum()) / (p.sum() - p[..., 0, 0].sum())).item()


def test_bilinear_generator_has_far_less_2px_grain_than_nearest_with_the_same_weights():
    """The whole generator on a real photo: the same random weights (a nearest net's, renamed as
    --init-from does) put several times less of the output's energy at the 2-pixel frequencies behind
    bilinear upsampling (what is left comes from the nonlinearities and the strided downsampling)."""
    torch.manual_seed(0)
    nearest = init_weights(ResnetGenerator(ngf=8, n_blocks=1, upsample="resize")).eval()
    bilinear = ResnetGenerator(ngf=8, n_blocks=1, upsample="bilinear").eval()
    bilinear.load_state_dict({k.replace(".conv.", ".bilinear_conv."): v for k, v in nearest.state_dict().items()})
    x = _photo((128, 128))
    with torch.no_grad():
        grain_nearest, grain_bilinear = _nyquist_share(nearest(x)), _nyquist_share(bilinear(x))
    assert grain_bilinear * 3 < grain_nearest, (grain_bilinear, grain_nearest)


def test_bilinear_upsampling_is_read_off_the_keys_and_round_trips(tmp_path):
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="bilinear"))
    sd = net.state_dict()
    # the resize net's keys with '.conv.' named '.bilinear_conv.': the layer indices stay the original's
    resize_keys = set(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize").state_dict())
    assert {k.replace(".bilinear_conv.", ".conv.") for k in sd} == resize_keys
    assert {k for k in sd if ".bilinear_conv." in k} == {
        "model.12.bilinear_conv.weight", "model.12.bilinear_conv.bias",
        "model.15.bilinear_conv.weight", "model.15.bilinear_conv.bias"}
    assert (infer_arch(sd).upsample, infer_arch(sd).name) == ("bilinear", "resnet_2blocks_bilinear")
    torch.save(sd, tmp_path / "g.pth")
    loaded = load_generator(tmp_path / "g.pth")
    assert loaded.upsample == "bilinear" and not loaded.training
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        got = loaded(x)
        assert torch.equal(got, net.eval()(x)) and got.shape == (1, 3, 36, 44)


def test_bilinear_generator_in_bf16_keeps_close_to_fp32():
    """HalfPrecisionGenerator (the bf16 and fp16 paths of the PyTorch backend): the bilinear resize runs
    in bf16 too, and the output stays close to fp32 on a real photo."""
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="bilinear")).eval()
    x = _photo((64, 48), 1)
    half = HalfPrecisionGenerator(copy.deepcopy(net), torch.bfloat16)  # it casts the modules it is given
    with torch.no_grad():
        want, got = net(x), half(x)
    assert got.dtype == torch.float32 and got.shape == want.shape == (1, 3, 48, 64)
    assert next(half.body.parameters()).dtype == torch.bfloat16
    to8 = lambda y: y.add(1).mul(127.5).round()  # noqa: E731
    assert psnr(to8(got), to8(want)) >= 40


def _lattice_pattern(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A colour pattern with period 4 in both axes (mean zero): what a grid-locked grain is made of."""
    g = torch.Generator().manual_seed(seed)
    tile = torch.randn(1, 3, 4, 4, generator=g)
    tile -= tile.mean(dim=(2, 3), keepdim=True)
    return tile.repeat(1, 1, h // 4, w // 4)


def test_lattice_notch_removes_a_grid_locked_pattern_and_keeps_a_photo():
    """On a real photo plus a period-4 pattern: the pattern goes (with its 2-px part), the photo stays
    (>= 40 dB through the notch, borders included: the phase is kept there too)."""
    notch = LatticeNotch(4, 16.0)
    x = _photo((128, 96))
    pattern = 0.1 * _lattice_pattern(96, 128)
    with torch.no_grad():
        clean, dirty = notch(x), notch(x + pattern)
    to8 = lambda y: y.clamp(-1, 1).add(1).mul(127.5).round()  # noqa: E731
    assert psnr(to8(clean), to8(x)) >= 40
    left = dirty - clean  # the notch is linear: what is left of the pattern
    assert left.pow(2).mean() < 1e-4 * pattern.pow(2).mean(), left.pow(2).mean()
    assert psnr(to8(dirty), to8(x)) >= 40  # and 8-bit output of photo + pattern is the photo again
    ramp = torch.linspace(-0.8, 0.8, 256).view(1, 1, 1, 256).expand(1, 3, 160, 256)
    with torch.no_grad():  # a smooth gradient is not a grid: it passes, not turned into 4-px steps
        err = (notch(ramp) - ramp).abs()
    assert err[..., 56:-56, 56:-56].max() < 1e-4  # three sigmas from the borders: exactly
    assert err.max() < 1 / 127.5  # and near them (the weights cut off there): under one level of 8 bits
    odd = _photo((70, 50), 1)  # not a multiple of the period: padded inside, cropped back
    with torch.no_grad():
        assert notch(odd).shape == odd.shape and psnr(to8(notch(odd)), to8(odd)) >= 40


@pytest.mark.parametrize("h, w", [(64, 96), (70, 50), (61, 130)])
def test_lattice_notch_normalisers_are_its_smoothings_of_the_image_mask(h, w):
    """The normalisers are computed from lines (outer products); they must equal what the notch's own
    smoothings make of the mask as planes (1 inside the image, 0 in the padding up to the period),
    per cell and per phase, in the phase order ``_phases`` lays out."""
    import torch.nn.functional as F

    from cyclegan_convert.networks import _phases

    notch, p = LatticeNotch(4, 8.0), 4
    ph, pw = (-h) % p, (-w) % p
    ones = F.pad(torch.ones(1, 1, h, w, dtype=torch.float64), (0, pw, 0, ph))
    rows, cols = (F.pad(torch.ones(n, dtype=torch.float64), (0, pad)) for n, pad in ((h, ph), (w, pw)))
    cells, phases = notch._weights(rows, cols)
    assert torch.allclose(cells, notch._smooth(F.avg_pool2d(ones, p))[0, 0], rtol=1e-12, atol=0)
    assert torch.allclose(phases, notch._smooth(_phases(ones, p)), rtol=1e-12, atol=0)


def test_lattice_notch_is_read_off_the_keys_and_loads_in_16_bits(tmp_path):
    """The notch has no learned weights: its (period, sigma) buffer comes after the tanh, so a state
    dict (and the fp16 file a bundle stores) rebuilds it; a net without it keeps the original keys."""
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 8.0))).eval()
    sd = net.state_dict()
    plain = set(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize").state_dict())
    assert set(sd) - plain == {"model.21.notch"}
    arch = infer_arch(sd)
    assert (arch.notch, arch.name) == ((4, 8.0), "resnet_2blocks_resize_notch")
    torch.save({k: v.half() for k, v in sd.items()}, tmp_path / "g16.pth")
    loaded = load_generator(tmp_path / "g16.pth")
    x = _photo((60, 44))
    with torch.no_grad():
        assert loaded.notch == (4, 8.0)
        assert psnr(loaded(x).add(1).mul(127.5).round(), net(x).add(1).mul(127.5).round()) >= 40
        half = HalfPrecisionGenerator(copy.deepcopy(net), torch.bfloat16)(x)
    assert half.dtype == torch.float32 and psnr(half.add(1).mul(127.5).round(), net(x).add(1).mul(127.5).round()) >= 35


def test_lattice_notch_stays_fp32_under_autocast_and_odd_notch_buffers_are_refused(tmp_path):
    """Training with --amp runs the generators under bf16 autocast: the notch still filters in fp32.
    A file whose notch buffer ccv would never write is refused with one line, not a crash."""
    notch = LatticeNotch(4, 16.0)
    x = _photo((64, 48))
    with torch.no_grad():
        want = notch(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = notch(x)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-6)
    sd = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 8.0))).state_dict()
    for bad in ([0.0, 32.0], [4.0, 0.0], [4.0, float("nan")], [4.0, 1e6]):
        sd["model.21.notch"] = torch.tensor(bad)
        torch.save(sd, tmp_path / "g.pth")
        with pytest.raises(NotAGeneratorError, match="lattice notch"):
            load_generator(tmp_path / "g.pth")


# Bounds relative to the largest output: fp32 1e-4 (measured 9e-6 and 2e-6 here); bf16 four of its
# rounding steps (2^-8) of that value: measured 1.7 and 0.7 of them (0.052 at 8.0, 0.014 at 4.9; PyTorch's
# own instance_norm 0.053 and 0.77: it loses the flat image). Without the shift the flat image is off
# by 2.7 (fp32) and 5.1 (bf16).
@pytest.mark.parametrize("dtype, rel_tol", [(torch.float32, 1e-4 / 8), (torch.bfloat16, 4 * 2**-8)])
@pytest.mark.parametrize("contrast", [5.0, 0.01])  # a photo after a conv; a nearly flat one (mean/std up to ~5,000)
def test_instance_norm_on_channels_last_cpu_input_equals_the_original(dtype, rel_tol, contrast):
    """On the CPU a channels_last input goes through group_norm (one group per channel): the same
    statistics, no copy to NCHW, and the layout is kept for the next convolution; a flat image's
    large mean does not cancel its variance."""
    from cyclegan_convert.networks import InstanceNorm

    photo = torch.from_numpy(np.array(Image.open(PHOTOS[0]).convert("RGB").resize((96, 64)))).permute(2, 0, 1)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    with torch.no_grad():
        x = conv(photo[None].float() / 127.5 - 1) * contrast + 3  # a large offset, as after the first conv
    norm = InstanceNorm(16)
    want = torch.nn.functional.instance_norm(x.to(dtype).double(), eps=norm.eps)  # of the input as given
    got = norm(x.to(dtype).contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == dtype
    assert (got.double() - want).abs().max().item() < rel_tol * want.abs().max().item()
    assert norm(x).is_contiguous()  # an NCHW input stays on instance_norm


# bf16: both ways round the output to bf16 (2^-9 of it) after summing 1,568 products of bf16 inputs;
# the split also rounds its 7 row maps. A tap shifted by one row or a transposed kernel is off by
# about the output's own size.
@pytest.mark.parametrize("dtype, rel_tol", [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 2**-6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_narrow_conv_computes_the_convolution_it_replaces(dtype, rel_tol, channels_last):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 3, 7)
    with torch.no_grad():
        conv.weight[0, 0, 0, 1] += 1.0  # an asymmetric kernel: a transposed or flipped one differs
    narrow = NarrowConv2d.sharing(conv)
    assert narrow.weight is conv.weight and narrow.bias is conv.bias
    x = torch.randn(2, 32, 29, 35).to(dtype)  # neither side a multiple of anything
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = torch.nn.functional.conv2d(x.double(), conv.weight.double(), conv.bias.double())
    with torch.no_grad():
        got = narrow.to(dtype)(x)
    assert got.dtype == dtype and got.shape == want.shape
    assert (got.double() - want).abs().max().item() < rel_tol * want.abs().max().item()


def test_narrow_conv_trains_as_a_plain_conv_and_only_the_last_layer_is_swapped():
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=1))
    x = torch.randn(1, 3, 32, 32)
    swapped = with_narrow_convs(copy.deepcopy(net))
    narrow = [m for m in swapped.modules() if isinstance(m, NarrowConv2d)]
    assert [m.out_channels for m in narrow] == [3] and swapped.model[-2] is narrow[0]
    # convolutions with padding or stride keep their own class, however few their outputs
    tiny = with_narrow_convs(torch.nn.Sequential(torch.nn.Conv2d(8, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 3, stride=2)))
    assert [type(m) for m in tiny] == [torch.nn.Conv2d, torch.nn.Conv2d]
    with pytest.raises(ValueError, match="plain"):
        NarrowConv2d.sharing(tiny[0])
    assert swapped.state_dict().keys() == net.state_dict().keys()
    for m in (net, swapped):  # with autograd the swapped layer is a plain Conv2d: the same gradients
        m(x).square().mean().backward()
    assert torch.equal(net.model[-2].weight.grad, swapped.model[-2].weight.grad)
    with torch.no_grad():
        assert (net(x) - swapped(x)).abs().max().item() < 1e-5
        # an ONNX export (torch.export underneath) keeps the one convolution other runtimes know
        graph = torch.export.export(narrow[0].eval(), (torch.randn(1, 8, 20, 20),)).graph
    assert [n.target.__name__ for n in graph.nodes if n.op == "call_function"] == ["conv2d.default"]


def test_the_cpu_norm_compiles_once_for_every_size_with_dynamic_shapes():
    """``--compile`` compiles with dynamic shapes: one graph must serve every image size."""
    from torch._dynamo.testing import CompileCounter

    from cyclegan_convert.networks import InstanceNorm

    torch._dynamo.reset()
    counter = CompileCounter()
    norm = torch.compile(InstanceNorm(8), backend=counter, dynamic=True)
    for h, w in ((16, 24), (20, 36), (28, 12), (9, 13)):
        norm(torch.randn(1, 8, h, w).contiguous(memory_format=torch.channels_last))
    assert counter.frame_count == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_normalise_with_given_statistics_is_the_formula_per_image(dtype):
    """The tiles' and video's InstanceNorm path (batch_norm in inference mode, one image at a time)
    against the formula in fp64, each image with its own statistics, channels_last kept."""
    torch.manual_seed(0)
    x = (torch.randn(3, 16, 24, 20, dtype=torch.float64) * 4 + 30).to(dtype).contiguous(memory_format=torch.channels_last)
    mean = torch.randn(3, 16, 1, 1) * 5 + 30
    var = torch.rand(3, 16, 1, 1) * 20 + 1
    y = normalise(x, mean, var, 1e-5)
    want = (x.double() - mean.double()) / (var.double() + 1e-5).sqrt()
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    step = 2 ** -7 if dtype == torch.bfloat16 else 1e-5  # one bf16 step at values up to 2 (relative 2^-8)
    assert (y.double() - want).abs().max() <= step * max(1.0, want.abs().max().item())
    # one image's statistics are not another's
    assert (normalise(x, mean[:1], var[:1], 1e-5)[1:].double() - want[1:]).abs().max() > 0.5
