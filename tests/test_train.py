import pytest
import torch
from torch import nn

from course_lib import seed_everything
from course_lib.models import LeNet5
from course_lib.train import TrainingDiverged, checkpoint_path, evaluate, fit


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def small_net():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def test_fit_learns_and_records_history():
    x, y = toy_data()
    seed_everything(0)
    model = small_net()
    before = evaluate(model, x, y)["loss"]
    hist = fit(model, (x, y), val=(x, y), epochs=15, lr=1e-2, batch_size=32, progress=False)
    assert len(hist) == 15 and hist.column("epoch") == list(range(1, 16))
    assert hist.last("val_loss") < before * 0.6
    assert hist.last("val_accuracy") > 0.9
    with pytest.raises(KeyError, match="no metric"):
        hist.last("val_f1")


def test_interrupted_run_resumes_to_the_same_weights_and_history(tmp_path):
    x, y = toy_data()
    # uninterrupted reference run
    seed_everything(1)
    ref = small_net()
    ref_hist = fit(ref, (x, y), epochs=6, lr=1e-2, batch_size=32, seed=1, progress=False)

    # same run, interrupted after 2 epochs (KeyboardInterrupt as when a student stops the kernel)
    ckpt = tmp_path / "run.pt"

    def stop_after_two(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    seed_everything(1)
    model = small_net()
    with pytest.raises(KeyboardInterrupt):
        fit(model, (x, y), epochs=6, lr=1e-2, batch_size=32, seed=1, checkpoint=ckpt, progress=False,
            on_epoch_end=stop_after_two)
    # a new process would rebuild the model from scratch (different random init) and call fit again
    seed_everything(99)
    resumed = small_net()
    hist = fit(resumed, (x, y), epochs=6, lr=1e-2, batch_size=32, seed=1, checkpoint=ckpt, progress=False)
    assert hist.resumed_from == 2 and len(hist) == len(ref_hist) == 6
    assert [e["train_loss"] for e in hist.epochs] == pytest.approx([e["train_loss"] for e in ref_hist.epochs], rel=1e-6)
    for a, b in zip(resumed.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_finished_run_is_loaded_not_retrained(tmp_path, capsys):
    x, y = toy_data()
    ckpt = tmp_path / "done.pt"
    model = small_net()
    fit(model, (x, y), epochs=3, batch_size=64, checkpoint=ckpt, progress=False)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = small_net()
    calls = []
    hist = fit(fresh, (x, y), epochs=3, batch_size=64, checkpoint=ckpt, on_epoch_end=lambda e, r: calls.append(e))
    assert calls == [] and hist.resumed_from == 3 and "Loaded a finished run" in capsys.readouterr().out
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, trained[k])
    hist = fit(fresh, (x, y), epochs=3, batch_size=64, checkpoint=ckpt, retrain=True, progress=False,
               on_epoch_end=lambda e, r: calls.append(e))
    assert calls == [1, 2, 3] and hist.resumed_from == 0
    state = torch.load(ckpt, weights_only=True)  # the checkpoint loads without pickle's arbitrary code
    assert len(state["history"]) == 3


def test_nan_loss_stops_with_a_message(tmp_path):
    x, y = toy_data()
    x[5, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="epoch 1.*learning rate"):
        fit(small_net(), (x, y), epochs=2, checkpoint=tmp_path / "nan.pt", progress=False)
    assert not (tmp_path / "nan.pt").exists()  # nothing saved from a diverged epoch


def test_bad_arguments_are_refused():
    x, y = toy_data()
    with pytest.raises(ValueError, match="epochs"):
        fit(small_net(), (x, y), epochs=0)
    with pytest.raises(ValueError, match="equally many"):
        fit(small_net(), (x, y[:10]), epochs=1)
    with pytest.raises(ValueError, match="loss must be"):
        fit(small_net(), (x, y), epochs=1, loss="hinge")


def test_autoencoder_with_mse_and_checkpoint_names(cache):
    x = torch.rand(64, 8)
    model = nn.Sequential(nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 8))
    hist = fit(model, (x, x), epochs=5, loss="mse", lr=1e-2, progress=False)
    assert hist.epochs[-1]["train_loss"] < hist.epochs[0]["train_loss"]
    a, b = checkpoint_path("ae", width=3), checkpoint_path("ae", width=4)
    assert a != b and a == checkpoint_path("ae", width=3) and a.parent == cache / "checkpoints"


def test_lenet5_shapes():
    model = LeNet5()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == 61706  # the classic LeNet-5 count
    with pytest.raises(AssertionError, match="28x28"):
        model(torch.zeros(1, 1, 32, 32))


def test_augment_is_applied_to_training_batches_only():
    x, y = toy_data(64)
    seen = []

    def augment(batch):
        seen.append(batch.shape)
        return batch + 0.01 * torch.randn_like(batch)

    fit(small_net(), (x, y), val=(x, y), epochs=2, batch_size=32, augment=augment, progress=False)
    assert seen == [(32, 8)] * 4  # 2 epochs x 2 batches, never the validation set


def test_train_lenet_is_cached_by_its_settings(cache):
    from course_lib.data.imageset import ImageSet
    from course_lib.models.lenet import train_lenet

    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.rand(40, 1, 28, 28, generator=g), torch.arange(40) % 10, [str(i) for i in range(10)],
                    "tiny", "test fixture")
    model, hist = train_lenet(data, data, epochs=2, name="t", progress=False)
    again, hist2 = train_lenet(data, data, epochs=2, name="t", progress=False)
    assert hist.resumed_from == 0 and hist2.resumed_from == 2
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    _, other = train_lenet(data, data, epochs=2, augment=False, name="t", progress=False)
    assert other.resumed_from == 0  # different settings, different checkpoint


def test_even_batches_leave_no_tiny_leftover():
    from course_lib.train import even_batches

    sizes = [len(b) for b in even_batches(torch.arange(34), 32)]
    assert sizes == [17, 17]
    parts = even_batches(torch.randperm(78), 32)
    assert [len(b) for b in parts] == [26, 26, 26] and torch.equal(torch.cat(parts).sort().values, torch.arange(78))
    assert [len(b) for b in even_batches(torch.arange(8), 32)] == [8]
    with pytest.raises(ValueError, match="at least one index"):
        even_batches(torch.arange(0), 32)
