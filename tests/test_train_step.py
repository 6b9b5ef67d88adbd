"""The training step against a straightforward reference of the original, the schedule and the pool."""
from __future__ import annotations

import copy
import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

from cyclegan_convert.networks import InstanceNorm
from cyclegan_convert.train.config import TrainConfig
from cyclegan_convert.train.model import LOSS_NAMES, CycleGAN
from cyclegan_convert.train.pool import ImagePool
from cyclegan_convert.train.schedule import lr_at

from conftest import PAINTINGS, PHOTOS



class ReferenceStep:
    """The original's optimize_parameters, written out plainly: one call per network application,
    separate backward passes for D_A and D_B, pool disabled. Deliberately independent of model.py."""

    def __init__(self, G_A, G_B, D_A, D_B, lr=2e-4, lambda_A=10.0, lambda_B=10.0, lambda_idt=0.5):
        self.G_A, self.G_B, self.D_A, self.D_B = G_A, G_B, D_A, D_B
        self.lambda_A, self.lambda_B, self.lambda_idt = lambda_A, lambda_B, lambda_idt
        self.opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), lr=lr, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=lr, betas=(0.5, 0.999))

    @staticmethod
    def gan(pred, target_is_real):
        target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(pred)
        return torch.nn.MSELoss()(pred, target)

    def step(self, real_A, real_B):
        # forward()
        fake_B = self.G_A(real_A)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        # G_A and G_B
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.requires_grad = False
        self.opt_G.zero_grad()
        idt_A = self.G_A(real_B)
        loss_idt_A = torch.nn.L1Loss()(idt_A, real_B) * self.lambda_B * self.lambda_idt
        idt_B = self.G_B(real_A)
        loss_idt_B = torch.nn.L1Loss()(idt_B, real_A) * self.lambda_A * self.lambda_idt
        loss_G_A = self.gan(self.D_A(fake_B), True)
        loss_G_B = self.gan(self.D_B(fake_A), True)
        loss_cycle_A = torch.nn.L1Loss()(rec_A, real_A) * self.lambda_A
        loss_cycle_B = torch.nn.L1Loss()(rec_B, real_B) * self.lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        self.opt_G.step()
        # D_A and D_B
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.requires_grad = True
        self.opt_D.zero_grad()
        losses_D = []
        for D, real, fake in ((self.D_A, real_B, fake_B), (self.D_B, real_A, fake_A)):
            loss_D = (self.gan(D(real), True) + self.gan(D(fake.detach()), False)) * 0.5
            loss_D.backward()
            losses_D.append(loss_D)
        self.opt_D.step()
        vals = [loss_G_A, loss_G_B, loss_cycle_A, loss_cycle_B, loss_idt_A, loss_idt_B, *losses_D]
        return dict(zip(LOSS_NAMES, (float(v.detach()) for v in vals)))


def _images(paths, size, n):
    from PIL import Image

    from cyclegan_convert.train.data import to_tensor

    return torch.stack([to_tensor(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC))
                        for p in paths[:n]])


def _biases_before_instance_norm(net) -> set[str]:
    """Conv biases followed by InstanceNorm: IN subtracts any per-channel constant, so their true
    gradient is zero and what Adam sees is rounding noise (its sign decides a +-lr step)."""
    leaves = [(name, m) for name, m in net.named_modules() if not list(m.children())]
    return {f"{prev}.bias" for (prev, a), (_, b) in zip(leaves, leaves[1:])
            if isinstance(a, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and isinstance(b, InstanceNorm)}


@pytest.fixture
def float64():
    """The comparison runs in float64. In float32, Adam's first step (lr * sign(grad)) turns rounding
    noise in weights whose gradient is nearly zero into +-lr steps, and which weights flip depends on
    the CPU's kernels (AVX2 and AVX-512 machines differ). In float64 only the true-zero gradients
    (the biases before InstanceNorm, handled below) are left to noise."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("batch", [1, 2])
def test_train_step_matches_reference_of_original(batch, float64):
    torch.manual_seed(1)
    config = TrainConfig(ngf=8, ndf=8, n_blocks=2, pool_size=0, seed=3)
    ours = CycleGAN(config)
    ref_nets = [copy.deepcopy(ours.nets[k]) for k in ("G_A", "G_B", "D_A", "D_B")]
    for a, b in zip(ref_nets, ours.nets.values()):  # same init
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    ref = ReferenceStep(*ref_nets)

    real_A = _images(PAINTINGS, 32, 3).double()
    real_B = _images(PHOTOS, 32, 3).double()
    for step in range(3):
        a, b = real_A[step:step + batch], real_B[step:step + batch]
        if a.shape[0] < batch:
            a, b = real_A[:batch], real_B[:batch]
        got = ours.train_step(a, b)
        want = ref.step(a, b)
        assert list(got) == list(LOSS_NAMES)
        for k in LOSS_NAMES:
            assert got[k] == pytest.approx(want[k], rel=1e-4, abs=1e-6), (step, k)
        assert all(v > 0 for v in got.values())

    # Updated parameters: weights tightly; noise-driven biases (see above) within Adam's step size.
    for name, ref_net in zip(("G_A", "G_B", "D_A", "D_B"), ref_nets):
        noisy = _biases_before_instance_norm(ref_net)
        ours_sd = ours.nets[name].state_dict()
        for key, want in ref_net.state_dict().items():
            if key in noisy:
                torch.testing.assert_close(ours_sd[key], want, rtol=0, atol=3 * 3 * config.lr)  # 3 steps of at most ~3 lr
            else:
                torch.testing.assert_close(ours_sd[key], want, rtol=1e-4, atol=2e-6, msg=f"{name}.{key}")
        # and the networks compute the same thing after training
        x = real_A[:1] if name[0] == "G" else real_B[:1]
        with torch.no_grad():
            torch.testing.assert_close(ours.nets[name](x), ref_net(x), rtol=1e-3, atol=1e-5)
    # the step changed the weights at all (a step that does nothing would also "match" nothing else)
    init = CycleGAN(config)
    assert not torch.equal(init.G_A.state_dict()["model.1.weight"], ours.G_A.state_dict()["model.1.weight"])


def test_train_step_in_float32_matches_the_reference_before_any_update():
    """The float64 comparison above checks the algorithm; this checks the dtype training runs in:
    the first step's losses (computed before any update) agree in float32 on any CPU."""
    torch.manual_seed(1)
    ours = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=2, pool_size=0, seed=3))
    ref = ReferenceStep(*[copy.deepcopy(ours.nets[k]) for k in ("G_A", "G_B", "D_A", "D_B")])
    a, b = _images(PAINTINGS, 32, 2), _images(PHOTOS, 32, 2)
    assert a.dtype == torch.float32 and next(ours.G_A.parameters()).dtype == torch.float32
    got, want = ours.train_step(a, b), ref.step(a, b)
    for k in LOSS_NAMES:
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-6), k


def test_biases_before_instance_norm_found():
    config = TrainConfig(ngf=8, ndf=8, n_blocks=2)
    m = CycleGAN(config)
    g, d = _biases_before_instance_norm(m.G_A), _biases_before_instance_norm(m.D_A)
    assert "model.1.bias" in g and "model.10.conv_block.5.bias" in g and "model.26.bias" not in g
    assert d == {"model.2.bias", "model.5.bias", "model.8.bias"}


def test_identity_off_gives_zero_identity_losses():
    config = TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, lambda_identity=0.0)
    m = CycleGAN(config)
    losses = m.train_step(_images(PAINTINGS, 32, 1), _images(PHOTOS, 32, 1))
    assert losses["idt_A"] == 0 and losses["idt_B"] == 0 and losses["cycle_A"] > 0


@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_cycle_noise_reaches_only_the_reconstruction(lambda_identity):
    """--cycle-noise: the reconstructing generator sees each fake plus N(0, sigma) noise; the fakes
    the discriminators and the identity terms see are untouched; 0 leaves the original step."""
    torch.manual_seed(1)
    a, b = _images(PAINTINGS, 32, 1), _images(PHOTOS, 32, 1)
    base = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, lambda_identity=lambda_identity))
    noisy = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, lambda_identity=lambda_identity,
                                 cycle_noise=0.2))
    fake_B, fake_A = base.G_A(a).detach(), base.G_B(b).detach()  # the same weights in both models
    seen: dict[str, torch.Tensor] = {}
    for name in ("G_A", "G_B"):
        net = noisy.nets[name]
        net.register_forward_hook(lambda m, inp, out, name=name: seen.__setitem__(name, inp[0].detach()))
    got = noisy.train_step(a, b)
    # G_B's last input chunk is G_A(A) + noise; G_A's last call is G_B(B) + noise
    for name, fake in (("G_B", fake_B), ("G_A", fake_A)):
        noise = seen[name][-1:] - fake
        assert 0.17 < float(noise.std()) < 0.23 and abs(float(noise.mean())) < 0.03, name
    want = base.train_step(a, b)
    # the adversarial and identity terms are computed on clean fakes: equal; the cycle terms differ
    for k in ("G_A", "G_B", "idt_A", "idt_B"):
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-6), k
    assert got["cycle_A"] != pytest.approx(want["cycle_A"], rel=1e-3)


def test_lattice_energy_sees_a_grid_locked_grain_and_not_a_photo():
    """--grid-penalty's measure: a real photo has next to no pattern repeating every 2 or 4 pixels;
    the same photo with a faint 2-pixel checkerboard (amplitude 0.05 in [-1, 1]) has about its
    square; shifting the photo by a pixel changes nothing."""
    from cyclegan_convert.train.model import lattice_energy

    photo = _images(PHOTOS, 128, 2)
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    checker = 0.05 * (1 - 2 * ((yy + xx) % 2)).float()
    clean = float(lattice_energy(photo))
    grainy = float(lattice_energy(photo + checker))
    assert clean < 1e-4
    # the checkerboard is in the 2-pixel tile (0.05^2) and again in the 4-pixel one
    assert grainy == pytest.approx(2 * 0.05**2, rel=0.15)
    assert float(lattice_energy(torch.roll(photo, 1, dims=3))) < 1e-4


def test_grid_penalty_steers_the_generators_off_their_lattice_pattern():
    """The transposed convolutions of a fresh generator paint a grid: with --grid-penalty the step
    lowers its lattice energy where the plain step does not; 0 is the original step."""
    from cyclegan_convert.train.model import lattice_energy

    a, b = _images(PAINTINGS, 32, 1), _images(PHOTOS, 32, 1)
    energy = {}
    for weight in (0.0, 1e4):
        torch.manual_seed(1)
        m = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, grid_penalty=weight))
        with torch.no_grad():
            before = float(lattice_energy(m.G_A(a)))
        for _ in range(5):
            m.train_step(a, b)
        with torch.no_grad():
            energy[weight] = float(lattice_energy(m.G_A(a)))
    assert energy[1e4] < 0.5 * before and energy[1e4] < 0.5 * energy[0.0], (before, energy)


@pytest.mark.parametrize("epoch,factor", [(1, 1.0), (100, 1.0), (101, 1 - 1 / 101), (150, 1 - 50 / 101),
                                          (200, 1 - 100 / 101)])
def test_schedule_matches_original(epoch, factor):
    assert lr_at(epoch, 2e-4, 100, 100) == pytest.approx(2e-4 * factor, rel=1e-12)


def test_schedule_is_linear_and_positive_to_the_end():
    lrs = [lr_at(k, 2e-4, 100, 100) for k in range(1, 201)]
    assert lrs[:100] == [2e-4] * 100
    steps = [a - b for a, b in zip(lrs[100:], lrs[101:])]
    assert all(s == pytest.approx(2e-4 / 101) for s in steps)
    assert lrs[-1] > 0
    with pytest.raises(ValueError):
        lr_at(0, 2e-4, 100, 100)


def _marked(i):
    return torch.full((1, 3, 2, 2), float(i))


def test_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(3, seed=0)
    for i in range(3):  # filling: every image comes straight back and is stored
        assert torch.equal(pool.query(_marked(i)), _marked(i))
    assert [int(t[0, 0, 0, 0]) for t in pool.images] == [0, 1, 2]
    returned_old = 0
    for i in range(3, 403):
        out = int(pool.query(_marked(i))[0, 0, 0, 0])
        if out != i:
            returned_old += 1
            assert out < i  # an earlier image...
            assert any(int(t[0, 0, 0, 0]) == i for t in pool.images)  # ...swapped out for the new one
        assert len(pool.images) == 3
    assert 150 < returned_old < 250  # probability 0.5


def test_pool_mirrors_original_random_draws():
    """Same draws as the original's ``random.uniform`` / ``random.randint`` on a generator with the same seed."""
    pool = ImagePool(2, seed=42)
    rng = random.Random(42)
    stored = []
    for i in range(30):
        out = int(pool.query(_marked(i))[0, 0, 0, 0])
        if len(stored) < 2:
            stored.append(i)
            want = i
        elif rng.uniform(0, 1) > 0.5:
            j = rng.randint(0, 1)
            want, stored[j] = stored[j], i
        else:
            want = i
        assert out == want


def test_pool_size_zero_passes_through_and_state_round_trips():
    assert ImagePool(0).query(_marked(7)) is not None
    x = torch.randn(2, 3, 2, 2)
    assert torch.equal(ImagePool(0).query(x), x)
    a = ImagePool(2, seed=5)
    for i in range(4):
        a.query(_marked(i))
    b = ImagePool(2, seed=99)
    b.load_state_dict(a.state_dict())
    assert [torch.equal(a.query(_marked(i)), b.query(_marked(i))) for i in range(10, 30)] == [True] * 20


def test_pool_batch_query_keeps_shape_and_detaches():
    pool = ImagePool(4, seed=0)
    x = torch.randn(3, 3, 4, 4, requires_grad=True)
    out = pool.query(x * 2)
    assert out.shape == x.shape and not out.requires_grad


def test_color_loss_sees_hue_and_not_texture_or_light():
    """--color-loss compares cell-averaged chroma: a hue swap costs, a fine texture and a change of
    lightness at the same chroma do not."""
    from cyclegan_convert.train.model import color_loss

    x = _images(PHOTOS, 64, 2)
    assert color_loss(x, x, 16).item() == 0
    swapped = x[:, [2, 1, 0]]
    grain = x + 0.2 * torch.sign(torch.randn(x.shape[0], 1, 64, 64))  # equal in R, G, B: luma only
    brighter = (x + 0.3).clamp(-1, 1)
    assert color_loss(swapped, x, 16).item() > 20 * max(color_loss(grain, x, 16).item(), 1e-4)
    assert color_loss(brighter, x, 16).item() < 0.2 * color_loss(swapped, x, 16).item()


def test_color_loss_is_logged_and_pulls_the_translation_toward_the_inputs_chroma():
    """With --color-loss the step logs color_A/color_B, and its gradient moves G_A's output chroma
    toward its input's (compared with the same step without the term)."""
    from cyclegan_convert.train.model import OPTIONAL_LOSS_NAMES, color_loss

    a, b = _images(PAINTINGS, 32, 1), _images(PHOTOS, 32, 1)
    runs = {}
    for w in (0.0, 1000.0):
        m = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, color_loss=w, color_scale=8, lr=1e-3))
        losses = m.train_step(a, b)
        assert (set(OPTIONAL_LOSS_NAMES) <= set(losses)) == (w > 0)
        with torch.no_grad():
            runs[w] = color_loss(m.G_A(a), a, 8).item()
    assert runs[1000.0] < runs[0.0]


def test_discriminator_scales_judge_the_image_at_half_size_each_and_train():
    """--d-scales 2: two PatchGANs per domain, the second on the image averaged down by 2 (its map is
    the size the first gives at half the resolution); the step trains both, and the default keeps the
    original's single PatchGAN and its state_dict keys."""
    from cyclegan_convert.networks import MultiScaleDiscriminator, NLayerDiscriminator

    a, b = _images(PAINTINGS, 64, 1), _images(PHOTOS, 64, 1)
    assert isinstance(CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1)).D_A, NLayerDiscriminator)
    m = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, d_scales=2, lr=1e-2))
    assert isinstance(m.D_A, MultiScaleDiscriminator) and len(m.D_A.scales) == 2
    with torch.no_grad():
        full, half = m.D_A(b)
        assert full.shape[-1] == m.D_A.scales[0](b).shape[-1] and half.shape == m.D_A.scales[0](b[..., ::2, ::2]).shape
        assert torch.equal(half, m.D_A.scales[1](F.avg_pool2d(b, 3, 2, 1, count_include_pad=False)))
    before = {k: v.clone() for k, v in m.D_A.state_dict().items()}
    losses = m.train_step(a, b)
    assert all(math.isfinite(v) for v in losses.values())
    for k in ("scales.0.model.0.weight", "scales.1.model.0.weight"):  # both scales learn
        assert not torch.equal(before[k], m.D_A.state_dict()[k]), k


def test_generator_average_follows_the_trained_weights_and_is_what_is_saved():
    """--g-average d: after a step each averaged weight is d * before + (1 - d) * the trained one;
    the averages stand in for the generators in saved_nets (the discriminators stay), and without
    the option saved_nets are the trained networks themselves."""
    a, b = _images(PAINTINGS, 32, 1), _images(PHOTOS, 32, 1)
    m = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=3, g_average=0.9, lr=1e-2))
    before = {k: v.clone() for k, v in m.G_A.state_dict().items()}
    for _ in range(2):
        start = {k: v.clone() for k, v in m.averages["G_A"].state_dict().items()}
        m.train_step(a, b)
        trained = m.G_A.state_dict()
        for k, v in m.averages["G_A"].state_dict().items():
            torch.testing.assert_close(v, 0.9 * start[k] + 0.1 * trained[k], rtol=0, atol=1e-6)
    moved = max((m.G_A.state_dict()[k] - before[k]).abs().max().item() for k in before)
    apart = max((m.averages["G_A"].state_dict()[k] - m.G_A.state_dict()[k]).abs().max().item() for k in before)
    assert moved > 1e-3 and apart > 1e-4  # the step moved the weights, and the average lags behind
    assert m.saved_nets["G_A"] is m.averages["G_A"] and m.saved_nets["G_B"] is m.averages["G_B"]
    assert m.saved_nets["D_A"] is m.D_A
    state = m.state_dict()
    m2 = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0, seed=4, g_average=0.9))
    m2.load_state_dict(state)
    for k, v in m2.averages["G_B"].state_dict().items():
        assert torch.equal(v, m.averages["G_B"].state_dict()[k])
    plain = CycleGAN(TrainConfig(ngf=8, ndf=8, n_blocks=1, pool_size=0))
    assert plain.saved_nets == plain.nets and not plain.averages
