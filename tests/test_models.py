import keras
import numpy as np

from imbalance_lab.models.cnn import build_cnn
from imbalance_lab.models.linear import build_linear
from imbalance_lab.models.mlp import build_mlp

BIAS = np.log([0.7, 0.2, 0.1])


def test_linear_model_is_one_dense_layer_of_logits():
    model = build_linear((8, 8, 1), 3, BIAS)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 1 and model.count_params() == 64 * 3 + 3
    np.testing.assert_allclose(dense[0].bias.numpy(), BIAS, rtol=1e-6)


def test_every_architecture_emits_one_logit_per_class():
    x = np.zeros((4, 8, 8, 1), dtype="float32")
    for model in (build_linear((8, 8, 1), 3, BIAS), build_mlp((8, 8, 1), 3, BIAS, widths=[8]),
                  build_cnn((8, 8, 1), 3, BIAS)):
        logits = keras.ops.convert_to_numpy(model(x))
        assert logits.shape == (4, 3)
        if model.name == "linear":  # zero input: the logits are the bias
            np.testing.assert_allclose(logits[0], BIAS, rtol=1e-6)
