class LinearProbeResult(dict):
    """Top-1 test accuracy per width of a linear probe, with its classifiers.

    A dict `{width: top-1 in [0, 1]}` (largest width first), so it reads like
    the other evaluations, which also carries the trained classifiers: one
    `keras.layers.Dense(num_classes)` per width that maps the backbone's raw
    features at that width to class logits (the probe's feature
    standardization is folded into its kernel and bias). Attach it to
    `backbone.subnetwork(width)` to get a classifier.

    Args:
        accuracies: dict `{width: top-1}`.
        classifiers: dict `{width: keras.layers.Dense}`, built on
            `backbone.feature_dim(width)` inputs.
        num_classes: int, number of classes.
        joint: bool, whether the probes were trained jointly (SlimCLR's
            switchable probe) rather than independently.

    Example:

    ```python
    import keras
    from keras_slim.backbones import SlimResNet
    from keras_slim.data import load
    from keras_slim.evaluation import linear_probe

    train = load("digits", "train", max_examples=32)
    test = load("digits", "test", max_examples=16)
    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5],
                          input_shape=(8, 8, 1))
    result = linear_probe(backbone, train.images / 255.0, train.labels,
                          test.images / 255.0, test.labels, epochs=2)
    top1 = result[0.5]  # test top-1 at width 0.5
    images = keras.Input((8, 8, 1))
    logits = result.classifiers[0.5](backbone.subnetwork(0.5)(images))
    classifier = keras.Model(images, logits)  # a plain classifier at width 0.5
    assert classifier(test.images / 255.0).shape == (16, result.num_classes)
    ```

    References:
        - [Zhao et al., SlimCLR, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """

    def __init__(self, accuracies, classifiers, num_classes, joint=False):
        super().__init__(accuracies)
        self.accuracies = dict(accuracies)
        self.classifiers = dict(classifiers)
        self.num_classes = int(num_classes)
        self.joint = bool(joint)

    def get_config(self):
        return {
            "accuracies": self.accuracies,
            "classifiers": self.classifiers,
            "num_classes": self.num_classes,
            "joint": self.joint,
        }

    def __repr__(self):
        kind = "joint" if self.joint else "independent"
        return f"LinearProbeResult({dict(self)}, {kind} probes)"
