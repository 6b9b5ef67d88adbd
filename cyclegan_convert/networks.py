"""The CycleGAN networks, layer for layer as in the original implementation.

Module indices inside ``nn.Sequential`` are what the state_dict keys are made of, so the layer lists
below must keep the original order: a generator ``.pth`` from junyanz/pytorch-CycleGAN-and-pix2pix
loads with strict key matching.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

# (layer, its input as it comes, any dtype) -> (mean, var), (N or 1, C, 1, 1), fp32 or fp64. A hook
# that computes statistics converts 16-bit inputs itself: one that hands out stored ones costs nothing.
StatsHook = Callable[["InstanceNorm", torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def instance_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, var) of each image's channels, (N, C, 1, 1): what a statistics hook computes, in fp32
    (fp64 stays fp64) whatever the layer's dtype."""
    var, mean = torch.var_mean(x if x.dtype == torch.float64 else x.float(), dim=(2, 3), keepdim=True, unbiased=False)
    return mean, var


def normalise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with given per-image, per-channel fp32 statistics, in x's dtype.

    batch_norm in inference mode is exactly that for one image: one pass, computed in fp32 inside
    PyTorch's kernel, channels_last kept. The elementwise form (copy to fp32, subtract, scale, copy
    back) took a quarter of a tiled 12 MP photo: 228 against 31 ms for a 32x1152x1152 bf16 tile
    (AMD EPYC, 2 threads), with outputs within one bf16 step of each other."""
    if x.dtype == torch.float16:  # fp16 (CUDA): the fp32 round trip keeps large values in range
        xf = x.float()
        return ((xf - mean) * torch.rsqrt(var + eps)).half()
    # batch_norm takes fp32 statistics with 16-bit inputs; fp64 (tests) stays fp64
    stats_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    mean, var = mean.to(stats_dtype), var.to(stats_dtype)
    parts = [F.batch_norm(x[i:i + 1], mean[min(i, len(mean) - 1)].flatten(), var[min(i, len(var) - 1)].flatten(),
                          training=False, eps=eps) for i in range(x.shape[0])]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class InstanceNorm(nn.InstanceNorm2d):
    """InstanceNorm2d(affine=False, track_running_stats=False), as the original.

    Two additions that hold no state (the state_dict is unchanged):
    - the statistics are computed in at least fp32 whatever the input dtype: in fp16 the variance
      over H*W elements overflows and the output turns to garbage (bf16 is accumulated in fp32 by
      PyTorch's own kernels; fp64 stays fp64);
    - ``stats_hook`` may supply (mean, var) from elsewhere: tiles use statistics of the whole image,
      video frames statistics smoothed over time.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=False, track_running_stats=False)
        self.stats_hook: Optional[StatsHook] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stats_hook is None:
            if x.dtype == torch.float16:
                return F.instance_norm(x.float(), eps=self.eps).half()
            if x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
                # one group per channel is instance norm. PyTorch's CPU instance_norm copies a
                # channels_last input to NCHW and back: 1.5 ms against 0.67 ms for this path at
                # 256x64x64 bf16 (a 256 px image 0.16 -> 0.08 s). group_norm computes the variance in
                # one pass, which cancels where the mean is large against the spread (a flat photo
                # after the first conv: errors of 70 at mean/std 1000); normalising is blind to a
                # shift, so a mean from every 8th row and column is taken out first (2e-5 in fp32).
                # (taken through an NHWC view: slicing the NCHW dims guards each size under
                # torch.compile's dynamic shapes; detached: normalising ignores it anyway)
                shift = x.detach().permute(0, 2, 3, 1)[:, ::8, ::8].mean((1, 2))[:, :, None, None]
                return F.group_norm(x - shift, x.shape[1], eps=self.eps)
            # bf16 has fp32's range and PyTorch's kernels accumulate it in fp32: no copy needed
            # (the fp32 round trip cost a third of a bf16 CPU forward pass on large images)
            return F.instance_norm(x, eps=self.eps)
        mean, var = self.stats_hook(self, x)
        return normalise(x, mean, var, self.eps)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, use_dropout: bool = False):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), InstanceNorm(dim), nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))  # shifts the second conv to conv_block.6, as in the original
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), InstanceNorm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)  # no ReLU after the add


UPSAMPLES = ("transpose", "resize", "bilinear")


class ResizeConv(nn.Module):
    """x2 resize then a 3x3 convolution: the remedy for the checkerboard that a stride-2 transposed
    convolution paints when its kernel overlaps unevenly (Odena et al., Distill 2016).

    ``nearest`` still lets a learned kernel treat even and odd output pixels differently (each sees
    another mix of its neighbours), and a trained generator uses that to paint a 2-pixel grain.
    ``bilinear`` has no response at the output's Nyquist frequency and the convolution after it is
    shift-invariant, so a period-2 pattern can only come from the nonlinearities.

    One module, so the layer indices of the generator stay the original's; the convolution's name
    says which resize it follows (``model.<i>.conv.*`` nearest, ``model.<i>.bilinear_conv.*``
    bilinear), so a state_dict alone tells how to rebuild its network."""

    CONV_NAMES = {"nearest": "conv", "bilinear": "bilinear_conv"}

    def __init__(self, in_ch: int, out_ch: int, mode: str = "nearest"):
        super().__init__()
        self.mode = mode
        self.conv_name = self.CONV_NAMES[mode]
        self.add_module(self.conv_name, nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = getattr(self, self.conv_name)
        if self.mode == "nearest":
            return conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return conv(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


class NarrowConv2d(nn.Conv2d):
    """A convolution with few output channels and a tall kernel (the generator's last: 7x7 to 3
    channels) computed as a convolution over each row of taps into kernel-height x out_channels maps,
    then the shifted sum of those maps: the same weights and multiply-adds, and the same result to
    rounding. On the CPU oneDNN vectorises a convolution over its output channels, so 3 of them leave
    most of each vector empty; 21 fill it: a 400 px tile of the bundled model's last layer took 20.5
    -> 9.4 ms in bf16, 37 -> 24 ms in fp32 (AMD EPYC, 2 cores). Inference on the CPU only: with
    autograd, on other devices, or when traced or exported (ONNX) it is a plain Conv2d; only
    convolutions without stride, padding, dilation or groups are made one (``is_plain``).
    A subclass, so tiling's reach, the FLOP counts and the state_dict see the layer it replaces."""

    @staticmethod
    def is_plain(conv: nn.Conv2d) -> bool:
        return ((conv.stride, conv.padding, conv.dilation, conv.groups) == ((1, 1), (0, 0), (1, 1), 1)
                and conv.kernel_size[0] > 1)

    @classmethod
    def sharing(cls, conv: nn.Conv2d) -> "NarrowConv2d":
        """A NarrowConv2d in place of a plain ``conv``, with its very parameters (not copies)."""
        if not cls.is_plain(conv):
            raise ValueError(f"not a plain convolution: {conv}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, bias=conv.bias is not None, device="meta")
        new.weight, new.bias = conv.weight, conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        if (x.device.type != "cpu" or (torch.is_grad_enabled() and self.weight.requires_grad) or torch.jit.is_tracing()
                or _exporting()):  # an export keeps the one Conv node that other runtimes know
            return super().forward(x)
        o = self.out_channels
        # channel j * o + c: output channel c's taps of kernel row j, so each row's maps are one block
        w = self.weight.permute(2, 0, 1, 3).reshape(kh * o, self.in_channels, 1, kw)
        if x.is_contiguous(memory_format=torch.channels_last):
            w = w.contiguous(memory_format=torch.channels_last)
        z = F.conv2d(x, w).contiguous()  # NCHW: the shifted sums below read contiguous rows
        h = z.shape[2] - kh + 1
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = z[:, :o, :h].to(acc, copy=True)
        for j in range(1, kh):
            y += z[:, j * o:(j + 1) * o, j:j + h]
        if self.bias is not None:
            y += self.bias.to(acc).view(1, -1, 1, 1)
        return y.to(x.dtype)


def _exporting() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", None)  # torch 2.7 and later
    return bool(is_exporting and is_exporting())


def with_narrow_convs(model: nn.Module, max_out: int = 4) -> nn.Module:
    """``model`` with each plain Conv2d (``NarrowConv2d.is_plain``: the generator's last, after its
    reflection padding) of at most ``max_out`` output channels replaced, in place, by a
    ``NarrowConv2d`` sharing its parameters (for the CPU backend; the networks themselves keep the
    original's layers)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and child.out_channels <= max_out and NarrowConv2d.is_plain(child):
                setattr(parent, name, NarrowConv2d.sharing(child))
    return model


class LatticeNotch(nn.Module):
    """Removes what is locked to the generator's 4-pixel grid from its output: a fixed linear filter
    with zeros at the 2- and 4-pixel periods (1/4 and 1/2 cycle per pixel, both axes) and a gain of 1
    elsewhere, bar a narrow band (about 1/(2*pi*sigma) cycles per pixel) around them.

    The lattice component at a pixel is the Gaussian-weighted local mean of the pixels of its phase
    (same row and column modulo ``period``) minus that of all pixels (the same Gaussian on ``period``
    x ``period`` cell means, interpolated back); both are centred on the pixel, so a ramp passes
    untouched. It is subtracted. (In operators: (P - M)(I - M), P the phase means, M the local mean:
    the same notch, the smooth part taken out first for the sake of the borders.) Natural images have
    next to no power exactly there; a grain that the x2 upsamplings paint in step with the grid has
    most of its power there. Zero padding with normalised weights keeps the phases true at borders.

    No learned weights: ``notch`` (period, sigma) is a buffer, so a state_dict says the filter is
    there (``weights.infer_arch``) and original-format files, which lack it, are unchanged. Runs in
    fp32 (fp64 stays fp64) whatever the input dtype and under autocast too: a difference of two
    smooth means loses too much in 16 bits."""

    def __init__(self, period: int = 4, sigma: float = 32.0):
        super().__init__()
        self.register_buffer("notch", torch.tensor([float(period), float(sigma)]))
        self.period, self.sigma = int(period), float(sigma)
        r = int(3 * sigma / period)
        # Gaussian weights, one per cell; plain floats, so casting the generator to 16 bits leaves them
        self.taps = [math.exp(-(k * period) ** 2 / (2 * sigma**2)) for k in range(-r, r + 1)]
        # how far an output pixel's inputs reach: two smoothings in a row (the local mean, then the
        # phases' means of what is left), each r cells, the cell itself and the interpolation's
        self.reach = 2 * (r + 2) * period
        self.bypass = False  # set by tiling, which runs the notch once on the assembled image

    def _smooth(self, x: torch.Tensor) -> torch.Tensor:
        taps = torch.tensor(self.taps, dtype=x.dtype, device=x.device)
        c, n = x.shape[1], taps.numel()
        if x.device.type == "cpu":
            # oneDNN's depthwise convolution is 4.5x faster on channels_last, with the same result
            # (48 phase planes of a 12 MP image: 0.2 against 0.9 s)
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.conv2d(x, taps.view(1, 1, 1, n).expand(c, 1, 1, n), padding=(0, n // 2), groups=c)
        return F.conv2d(x, taps.view(1, 1, n, 1).expand(c, 1, n, 1), padding=(n // 2, 0), groups=c)

    def _smooth_lines(self, v: torch.Tensor) -> torch.Tensor:
        """``_smooth`` along one axis: (k, n) signals -> (k, n)."""
        taps = torch.tensor(self.taps, dtype=v.dtype, device=v.device)
        return F.conv1d(v[:, None], taps.view(1, 1, -1), padding=taps.numel() // 2)[:, 0]

    def _weights(self, rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalisers of ``_local_mean`` and ``_phase_mean``: what their smoothings make of the
        image's mask (1 inside, 0 in the padding), which is ``rows`` x ``cols``, so each is an outer
        product of smoothed lines (as planes, a quarter of the notch's smoothing work)."""
        p = self.period
        cells = self._smooth_lines(F.avg_pool1d(rows[None], p))[0][:, None] * \
            self._smooth_lines(F.avg_pool1d(cols[None], p))[0][None, :]
        r, c = self._smooth_lines(rows.view(-1, p).T), self._smooth_lines(cols.view(-1, p).T)  # (p, n/p): per phase
        phases = (r[:, None, :, None] * c[None, :, None, :]).reshape(1, p * p, r.shape[1], c.shape[1])
        return cells, phases

    def _local_mean(self, y: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """The mean of all pixels around each pixel: cell means smoothed, interpolated back."""
        p = self.period
        mean = self._smooth(F.avg_pool2d(y, p)) / cells
        return F.interpolate(mean, scale_factor=float(p), mode="bilinear", align_corners=False)

    def _phase_mean(self, y: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
        """The mean of the pixels of each pixel's phase around it: the phases as quarter-size images
        (a dilated convolution does the same, several times slower on the CPU)."""
        p = self.period
        b, c, hh, ww = y.shape
        means = self._smooth(_phases(y, p)).view(b, c, p * p, hh // p, ww // p) / phases[:, None]  # channel c*p*p + phase
        return _from_phases(means, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bypass:
            return x
        with torch.autocast(x.device.type, enabled=False):  # training with --amp: still fp32
            return self._filter(x if x.dtype == torch.float64 else x.float())

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        p, (h, w) = self.period, x.shape[-2:]
        ph, pw = (-h) % p, (-w) % p  # generator outputs are multiples of 4; anything else is padded
        y = F.pad(x, (0, pw, 0, ph))
        rows, cols = (F.pad(torch.ones(n, dtype=y.dtype, device=y.device), (0, pad)) for n, pad in ((h, ph), (w, pw)))
        cells, phases = self._weights(rows, cols)
        # the smooth part first: near the borders, where the weights are cut off at a different place
        # for each phase, a ramp would otherwise leak into the phases' means as a 4-pixel staircase
        rest = y - self._local_mean(y, cells)
        if ph:  # the padding stays empty (generator outputs have none: no ops in an exported graph)
            rest[..., h:, :] = 0
        if pw:
            rest[..., w:] = 0
        lattice = self._phase_mean(rest, phases) - self._local_mean(rest, cells)
        return (y - lattice)[..., :h, :w]


def _phases(x: torch.Tensor, p: int) -> torch.Tensor:
    """``F.pixel_unshuffle(x, p)`` (channel c*p*p + row phase*p + column phase), laid out
    channels_last: one copy, where pixel_unshuffle and a conversion made two (33 against 61 ms for a
    band of a 12 MP image)."""
    b, c, h, w = x.shape
    return (x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
            .reshape(b, h // p, w // p, c * p * p).permute(0, 3, 1, 2))


def _from_phases(m: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, p*p, H/p, W/p) in any layout -> (B, C, H, W): ``F.pixel_shuffle`` as one copy
    (pixel_shuffle of a channels_last tensor took 117 against 25 ms)."""
    b, c, _, h, w = m.shape
    return m.reshape(b, c, p, p, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * p, w * p)


class ResnetGenerator(nn.Module):
    """resnet_{6,9}blocks: c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-3, tanh.

    Input and output: NCHW in [-1, 1]; the output is 4*ceil(H/4) x 4*ceil(W/4), so callers pad
    to a multiple of 4 and crop back. ``upsample="transpose"`` is the original; ``"resize"``
    (nearest) and ``"bilinear"`` (ccv's own models) upsample with ``ResizeConv``. ``notch``:
    (period, sigma) of a ``LatticeNotch`` after the tanh (ccv's own models), or None.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 use_dropout: bool = False, upsample: str = "transpose",
                 notch: Optional[tuple[int, float]] = None):
        super().__init__()
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, not {upsample!r}")
        self.ngf, self.n_blocks, self.use_dropout, self.upsample = ngf, n_blocks, use_dropout, upsample
        self.notch = notch
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=True), InstanceNorm(ngf), nn.ReLU(True),
        ]
        for i in range(2):  # downsampling
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                InstanceNorm(ngf * mult * 2), nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, use_dropout) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            if upsample == "transpose":
                up = nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                        bias=True)
            else:
                up = ResizeConv(ngf * mult, ngf * mult // 2, "nearest" if upsample == "resize" else upsample)
            layers += [up, InstanceNorm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        if notch is not None:
            layers.append(LatticeNotch(*notch))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def stages(self) -> list[nn.Module]:
        """The network as consecutive pieces, composed equal to ``forward``: the encoder (full
        resolution in, a quarter out), each residual block, the decoder (a quarter in, full out, the
        notch included). ``tiling`` runs each over the whole image in tiles of its own."""
        return _stages(list(self.model))


class _Cast(nn.Module):
    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


def _stages(layers: list[nn.Module]) -> list[nn.Module]:
    blocks = [i for i, m in enumerate(layers) if isinstance(m, ResnetBlock)]
    if not blocks:
        return [nn.Sequential(*layers)]
    return [nn.Sequential(*layers[:blocks[0]]), *(layers[i] for i in blocks), nn.Sequential(*layers[blocks[-1] + 1:])]


class HalfPrecisionGenerator(nn.Module):
    """A generator in half precision except its stem (the first conv, its InstanceNorm and ReLU),
    which stays fp32. The first conv's output carries the image's mean colour, a large offset that
    InstanceNorm then subtracts: in half precision that subtraction cancels most of the mantissa.
    Full generator against fp32: bf16 everywhere 38.8-44 dB on real photos, this 44.6 dB or
    better; on a low-contrast photo bf16 34.7 -> 46.4 dB, fp16 47.4 -> 58.6 dB. The stem is about 1%
    of the multiply-adds. Takes and returns fp32; the modules are the generator's own (hooks still
    apply). Used by the PyTorch backend (bf16, fp16) and for the FP16 ONNX export."""

    def __init__(self, generator: ResnetGenerator, dtype: torch.dtype):
        super().__init__()
        layers = list(generator.model)
        k = next(i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)) + 1
        self.stem = nn.Sequential(*layers[:k]).float()
        self.body = nn.Sequential(*layers[k:]).to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x.float()).to(self.dtype)).float()

    def stages(self) -> list[nn.Module]:
        """As ``ResnetGenerator.stages``, with this module's casts."""
        return _stages([_Cast(torch.float32), *self.stem, _Cast(self.dtype), *self.body, _Cast(torch.float32)])


class NLayerDiscriminator(nn.Module):
    """PatchGAN; with n_layers=3 each output pixel sees a 70x70 patch (30x30 output at 256x256)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                InstanceNorm(ndf * mult), nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
            InstanceNorm(ndf * mult), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` PatchGANs, the k-th judging the image downscaled k times by 2 (3x3 average,
    stride 2, as pix2pixHD, Wang et al. 2018): the same 70x70 patch covers 140 and 280 pixels of the
    image at the coarser scales, masses and strokes rather than grain. Returns one prediction map per
    scale. ccv's; the original has one ``NLayerDiscriminator`` (``scales=1`` is not this class)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, scales: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The original 'normal' init: conv weights N(0, gain), biases 0 (no affine norm layers here)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net
