import keras
import numpy as np

from movierec.architectures import collab
from movierec.examples import ModelInputs
from movierec.optim import FusedAdam, make_optimizer, to_stock_adam

COLLAB = collab.Settings(dense=[10], dropout=[0.05, 0.5])


def trained(optimizer: str, steps_per_execution: int = 1, seed: int = 0):
    keras.utils.set_random_seed(seed)
    net = collab.build(COLLAB, collab.ModelParams(join="concat", embedding_size=4, l2=1e-3), ModelInputs(20, 30, (0.0, 5.0), None, 0.0))
    net.compile(loss="mse", optimizer=make_optimizer(optimizer, 0.01), steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    u, m, y = rng.integers(0, 20, 256), rng.integers(0, 30, 256), rng.uniform(0.5, 5, 256)
    history = net.fit([u, m], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return net, history.history["loss"]


def test_fused_adam_has_stock_adams_maths():
    stock, stock_loss = trained("adam")
    fused, fused_loss = trained("fused_adam")
    for a, b in zip(stock.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # same maths, float32 summation order differs
    np.testing.assert_allclose(stock_loss, fused_loss, rtol=1e-5)  # the L2 penalty is still in the loss


def test_lazy_adam_changes_untouched_rows_less():
    dense, _ = trained("fused_adam")
    lazy, _ = trained("lazy_adam")
    assert not all(np.allclose(a, b) for a, b in zip(dense.get_weights(), lazy.get_weights()))


def test_fused_training_is_deterministic_and_saves_without_custom_objects(tmp_path):
    a, loss_a = trained("fused_adam", steps_per_execution=4, seed=3)
    b, loss_b = trained("fused_adam", steps_per_execution=4, seed=3)
    assert loss_a == loss_b
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert isinstance(a.optimizer, FusedAdam)
    to_stock_adam(a).save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(again.optimizer) is keras.optimizers.Adam
    x = [np.arange(5), np.arange(5)]
    np.testing.assert_array_equal(again.predict(x, verbose=0), a.predict(x, verbose=0))
