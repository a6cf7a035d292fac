"""The checked arguments of one `export_backbone` call."""

import keras

from keras_slim.evaluation import _inputs
from keras_slim.evaluation.calibration import require_calibrated
from keras_slim.export.conversion import check_precision


class Request:
    """The checked arguments of one export."""

    @classmethod
    def check(cls, backbone, images, widths, precisions, representative,
              classifiers, labels, image_shape, int8_io):
        request = cls()
        _inputs.check_backbone(backbone)
        request.widths = _check_widths(backbone, widths)
        require_calibrated(backbone, request.widths)
        request.precisions = _check_precisions(precisions)
        request.images = _inputs.as_images(images, "images")
        request.image_shape = tuple(int(d) for d in (
            image_shape or request.images.shape[1:]))
        _check_shape(request.images, request.image_shape, "images")
        channels = backbone.image_shape[-1]
        if request.image_shape[-1] != channels:
            raise ValueError(
                f"`images` have {request.image_shape[-1]} channels, the "
                f"backbone takes {channels}: convert them the way the "
                f"training pipeline does (data.load(..., channels="
                f"{channels})).")
        if int8_io and "int8" not in request.precisions:
            raise ValueError("`int8_io` needs the precision 'int8'.")
        request.int8_io = bool(int8_io)
        request.representative = None
        if representative is not None:
            request.representative = _inputs.as_images(
                representative, "representative_images")
            _check_shape(request.representative, request.image_shape,
                         "representative_images")
        elif "int8" in request.precisions:
            raise ValueError(
                "precision 'int8' needs `representative_images`: a few "
                "hundred training images (float32 in [0, 1]) that calibrate "
                "the int8 activation ranges. Or choose 'dynamic_int8', which "
                "needs no data.")
        request.classifiers = _check_classifiers(backbone, classifiers,
                                                 request.widths)
        request.labels = None
        if labels is not None:
            request.labels = _inputs.as_labels(labels, "labels",
                                               count=len(request.images))
        return request


def _check_widths(backbone, widths):
    available = list(backbone.widths.stat_widths)
    if widths is None:
        return available
    checked = []
    for width in widths:
        try:
            width = backbone.widths.validate(float(width))
            backbone.widths.stat_index(width)
        except (TypeError, ValueError) as error:
            hint = ""
            if backbone.widths.is_range:
                hint = (" Any width of the range can be given statistics: "
                        "backbone = keras_slim.evaluation.with_stat_widths("
                        "backbone, [w]), then calibrate_batch_norm(backbone, "
                        "x_train, widths=[w]).")
            raise ValueError(
                f"cannot export width {width!r}: {error} The widths this "
                f"backbone can export are {available}.{hint}") from None
        if width not in checked:
            checked.append(width)
    if not checked:
        raise ValueError(f"no widths to export; choose from {available}.")
    return checked


def _check_precisions(precisions):
    if isinstance(precisions, str):
        precisions = [precisions]
    checked = []
    for precision in precisions:
        check_precision(precision)
        if precision not in checked:
            checked.append(precision)
    if not checked:
        raise ValueError("no precisions to export.")
    return checked


def _check_shape(images, image_shape, name):
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"`{name}` have shape {tuple(images.shape[1:])} per image, but "
            f"the export's input shape is {tuple(image_shape)}: resize them "
            f"the way the training pipeline does.")


def _check_classifiers(backbone, classifiers, widths):
    if not classifiers:
        return {}
    classifiers = {float(w): layer for w, layer in classifiers.items()}
    missing = [w for w in widths if w not in classifiers]
    if missing:
        raise ValueError(
            f"`classifiers` has no head for widths {missing}; give one per "
            f"exported width (e.g. linear_probe(...).classifiers).")
    for width in widths:
        layer = classifiers[width]
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"classifiers[{width}] must be a Keras layer, "
                             f"got {type(layer).__name__}.")
        want = backbone.feature_dim(width)
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and kernel.shape[0] != want:
            raise ValueError(
                f"classifiers[{width}] takes {kernel.shape[0]} features, but "
                f"width {width} gives {want}: pass the head trained at this "
                f"width.")
    return classifiers
