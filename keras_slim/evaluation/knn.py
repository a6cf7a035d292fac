"""Weighted k-nearest-neighbour classification of backbone features.

The kNN monitor of instance-discrimination self-supervised learning (Wu et
al. 2018), used by MoCo, SlimCLR and most SSL code bases: features are
L2-normalized, a query's k most cosine-similar training features vote for
their class with weight `exp(similarity / temperature)`, and the class with
the largest summed weight wins.
"""

import numpy as np

from keras_slim.evaluation import _inputs
from keras_slim.evaluation.features import labeled_features


def knn_classify(
    train_features,
    train_labels,
    query_features,
    num_classes,
    k=200,
    temperature=0.1,
    batch_size=256,
):
    """Predicted classes of `query_features` by a weighted kNN vote.

    Args:
        train_features: float array `(N, D)`, the labeled bank.
        train_labels: int class ids `(N,)` in `[0, num_classes)`.
        query_features: float array `(Q, D)` to classify.
        num_classes: int, number of classes.
        k: int, neighbours per query; capped at N.
        temperature: float > 0, vote weight `exp(cosine / temperature)`.
        batch_size: int, queries per chunk: memory stays at
            `batch_size x N` similarities whatever Q is.

    Returns:
        int64 numpy array `(Q,)` of predicted class ids.

    Example:

    ```python
    import numpy as np
    from keras_slim.evaluation import knn_classify

    bank = np.eye(3, dtype="float32")
    predicted = knn_classify(bank, np.array([0, 1, 2]), bank * 2.0,
                             num_classes=3, k=1)
    assert predicted.tolist() == [0, 1, 2]
    ```

    References:
        - [Wu et al., Unsupervised Feature Learning via Non-Parametric
          Instance Discrimination, CVPR 2018](https://arxiv.org/abs/1805.01978)
    """
    bank = _as_features(train_features, "train_features")
    queries = _as_features(query_features, "query_features")
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(
            f"`train_features` have {bank.shape[1]} dimensions but "
            f"`query_features` have {queries.shape[1]}: compute both at the "
            f"same width."
        )
    labels = _inputs.as_labels(train_labels, "train_labels", len(bank))
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", labels)
    )
    k = min(_inputs.check_positive_int(k, "k"), len(bank))
    temperature = _inputs.check_positive_float(temperature, "temperature")
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    bank = _l2_normalize(bank)
    queries = _l2_normalize(queries)
    predictions = [
        _vote(queries[start:start + batch_size], bank, labels, num_classes,
              k, temperature)
        for start in range(0, len(queries), batch_size)
    ]
    return np.concatenate(predictions)


def knn_accuracy(
    train_features,
    train_labels,
    query_features,
    query_labels,
    num_classes,
    k=200,
    temperature=0.1,
    batch_size=256,
):
    """Top-1 accuracy in [0, 1] of `knn_classify` against `query_labels`.

    Args: those of `knn_classify`, plus `query_labels`, int class ids `(Q,)`.
    """
    query_labels = _inputs.as_labels(
        query_labels, "query_labels", len(np.asarray(query_features))
    )
    predictions = knn_classify(
        train_features, train_labels, query_features, num_classes, k=k,
        temperature=temperature, batch_size=batch_size,
    )
    return float(np.mean(predictions == query_labels))


def evaluate_knn(backbone, train_images, train_labels, test_images,
                 test_labels, widths=None, k=200, temperature=0.1,
                 batch_size=256, num_classes=None):
    """kNN top-1 of the backbone's inference-mode features at each width.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        train_images: the labeled bank's images `(N, H, W, C)` in [0, 1], or
            a `tf.data.Dataset` of `(images, labels)` batches (then
            `train_labels=None`).
        train_labels: int class ids `(N,)`, or `None` with a dataset.
        test_images: query images, same forms.
        test_labels: int class ids, or `None` with a dataset.
        widths: widths to evaluate (default: the width list, or a range's
            `stat_widths`). A range's widths must be calibrated first
            (`calibrate_batch_norm`).
        k: int, neighbours (capped at the bank size).
        temperature: float, vote weight `exp(cosine / temperature)`.
        batch_size: int, images per forward pass and queries per kNN chunk.
        num_classes: int or `None` (1 + the largest label).

    Returns:
        dict `{width: top-1 in [0, 1]}`, largest width first.

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import evaluate_knn

    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    images = np.random.default_rng(0).random((16, 8, 8, 3), "float32")
    labels = np.arange(16) % 2
    top1 = evaluate_knn(backbone, images, labels, images[::-1], labels[::-1],
                        k=5)
    assert sorted(top1) == [0.5, 1.0]  # {width: top-1}
    ```
    """
    _inputs.check_backbone(backbone)
    widths = _inputs.resolve_widths(backbone, widths)
    results = {}
    for width in widths:
        bank, bank_labels = labeled_features(
            backbone, train_images, train_labels, width, batch_size, "train"
        )
        queries, query_labels = labeled_features(
            backbone, test_images, test_labels, width, batch_size, "test"
        )
        classes = _inputs.resolve_num_classes(
            num_classes, ("train_labels", bank_labels),
            ("test_labels", query_labels),
        )
        results[width] = knn_accuracy(
            bank, bank_labels, queries, query_labels, classes, k=k,
            temperature=temperature, batch_size=batch_size,
        )
    return results


def _as_features(features, name):
    array = _inputs.as_feature_matrix(features, name, "float32")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` holds NaN or Inf values: the backbone diverged or the "
            f"inputs are broken."
        )
    return array


def _l2_normalize(features):
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    # An all-zero feature (e.g. every ReLU dead) stays zero: similarity 0 to
    # everything rather than NaN.
    return features / np.maximum(norms, 1e-12)


def _vote(queries, bank, labels, num_classes, k, temperature):
    similarity = queries @ bank.T
    if k < len(bank):
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    else:
        neighbours = np.broadcast_to(np.arange(len(bank)), similarity.shape)
    nearest = np.take_along_axis(similarity, neighbours, axis=1)
    nearest = nearest.astype("float64")
    # exp((s - s_max) / T) is exp(s / T) times one factor shared by a query's
    # votes: the same argmax, without overflow or all-zero weights at small T.
    shift = nearest.max(axis=1, keepdims=True)
    weights = np.exp((nearest - shift) / temperature)
    scores = np.zeros((len(queries), num_classes))
    rows = np.repeat(np.arange(len(queries)), neighbours.shape[1])
    np.add.at(scores, (rows, labels[neighbours].ravel()), weights.ravel())
    return np.argmax(scores, axis=1)
