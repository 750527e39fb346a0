import pytest
import torch
import torch.nn.functional as F

from course_lib.evolution import next_generation, population_outputs, random_population
from course_lib.models.conv_autoencoder_ga import (_BOX, GAAutoencoder, _max_pool2, _stamp, _upsample2, layer_table,
                                                   scale_targets)


def test_parameter_count_per_reading():
    # conv 26 + conv 26 + dense 85 + 12 + 15 + 960 + tconv1 (10 kernels + 10 biases = 260) + tconv2 251
    assert sum(p.numel() for p in GAAutoencoder().parameters()) == 1635
    # the other reading: the first transposed conv mixes all ten channels (100 kernels)
    assert sum(p.numel() for p in GAAutoencoder(first_tconv="full").parameters()) == 3885
    table = layer_table(GAAutoencoder())
    assert [r["layer"] for r in table] == ["conv1", "conv2", "enc", "latent", "dec", "expand", "tconv1", "tconv2"]
    assert sum(r["parameters"] for r in table) == 1635
    assert table[-2]["weight"] == (10, 1, 5, 5) and table[-1]["weight"] == (10, 1, 5, 5)


@pytest.mark.parametrize("reading", ["per_channel", "full"])
def test_shapes_and_ranges(reading):
    model = GAAutoencoder(first_tconv=reading)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        z = model.encode(x)
        out = model(x)
    assert z.shape == (3, 2) and out.shape == (3, 1, 28, 28)
    assert 0 < float(z.min()) and float(z.max()) < 1 and 0 < float(out.min()) and float(out.max()) < 1
    assert model.decode(torch.rand(5, 2)).shape == (5, 1, 28, 28)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        GAAutoencoder()(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="first_tconv"):
        GAAutoencoder(first_tconv="mixed")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scale_targets(torch.full((1, 1, 28, 28), 255.0))


def test_targets_scaled_to_0_1_and_0_9():
    t = scale_targets(torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(t, torch.tensor([0.1, 0.5, 0.9]))


def test_upsampling_is_nearest_neighbour():
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(_upsample2(x), F.interpolate(x, scale_factor=2, mode="nearest"), rtol=0, atol=0)


@pytest.mark.parametrize("size,n,dim", [(4, 1, 0), (4, 3, 1), (12, 2, 0), (12, 1, 1)])
def test_stamped_6x6_kernels_equal_upsample_then_transposed_conv(size, n, dim):
    # per channel: upsample x2 then conv_transpose2d with a 5x5 kernel == stamp w6 = w5 @ BOX at stride 2
    torch.manual_seed(0)
    channels = 7
    h, w5, bias = torch.rand(n, channels, size, size), torch.randn(channels, 1, 5, 5), torch.randn(channels)
    expected = F.conv_transpose2d(_upsample2(h), w5, bias, groups=channels)        # (n, C, 2 size + 4, same)
    w6 = w5.reshape(channels, 25) @ _BOX                                           # (C, 36)
    terms = w6.view(channels, 36, 1, 1) * h.transpose(0, 1).reshape(channels, 1, n, size * size)  # (C, 36, n, size^2)
    terms = terms.reshape(channels, -1)
    got = _stamp(terms if dim == 1 else terms.t().contiguous(), bias, size, n, dim=dim)
    got = got if dim == 1 else got.t()                                             # (C, n * out^2)
    out = 2 * size + 4
    torch.testing.assert_close(got.view(channels, n, out, out).transpose(0, 1), expected, rtol=1e-5, atol=1e-5)


def test_box_matrix_sums_each_kernel_over_2x2_blocks():
    w5 = torch.randn(5, 5)
    w6 = (w5.reshape(1, 25) @ _BOX).view(6, 6)
    expected = F.conv_transpose2d(w5.view(1, 1, 5, 5), torch.ones(1, 1, 2, 2)).view(6, 6)  # full 2x2 box sum
    torch.testing.assert_close(w6, expected)


@pytest.mark.parametrize("reading", ["per_channel", "full"])
def test_population_forward_equals_each_agent_alone(reading):
    model = GAAutoencoder(first_tconv=reading)
    x = scale_targets(torch.rand(4, 1, 28, 28))
    agents = random_population(model, 6, seed=1)
    batched = population_outputs(model, agents, x, "batched")
    assert batched.shape == (6, 4, 1, 28, 28)
    torch.testing.assert_close(batched, population_outputs(model, agents, x, "loop"), rtol=0, atol=1e-6)
    # after a few rounds of mutation too (weights of order 1)
    rng = torch.Generator().manual_seed(0)
    for _ in range(5):
        agents = next_generation(agents, torch.rand(6, generator=rng), 10, rng)
    torch.testing.assert_close(population_outputs(model, agents, x), population_outputs(model, agents, x, "loop"),
                               rtol=0, atol=1e-6)


def test_population_forward_checks_shapes_and_does_not_share_outputs_between_calls():
    model = GAAutoencoder()
    agents, x = random_population(model, 3, seed=0), torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\(P, 1635\)"):
        model.population_forward(agents[:, :100], x)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model.population_forward(agents, x[:, 0])
    first = model.population_forward(agents, x)
    kept = first.clone()
    model.population_forward(agents * 0.5, x)      # reuses the scratch buffers, must not touch `first`
    assert torch.equal(first, kept)


def test_population_forward_with_large_evolved_weights_agrees_to_float_rounding():
    model = GAAutoencoder()
    x = scale_targets(torch.rand(3, 1, 28, 28))
    agents = random_population(model, 5, seed=2)
    rng = torch.Generator().manual_seed(0)
    for _ in range(200):  # weights drift to |w| of several units, as in a long evolution
        agents = next_generation(agents, torch.rand(5, generator=rng), 20, rng)
    torch.testing.assert_close(population_outputs(model, agents, x), population_outputs(model, agents, x, "loop"),
                               rtol=0, atol=1e-4)


def test_elementwise_max_pool_equals_max_pool2d():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 24, 24)
    assert torch.equal(_max_pool2(x), F.max_pool2d(x, 2))
    assert torch.equal(_max_pool2(x[:, :, :8, :8]), F.max_pool2d(x[:, :, :8, :8], 2))
