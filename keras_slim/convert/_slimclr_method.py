"""A SlimCLR pretraining file as a whole `keras_slim.methods.SlimCLR` recipe:
the projector, MoCo v3's predictor, the momentum encoder and MoCo v2's queue."""

import numpy as np

from keras_slim.convert._slimclr_backbone import assign_backbone
from keras_slim.convert._slimclr_backbone import assign_switchable
from keras_slim.convert._slimclr_backbone import encoder_widths
from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_dense
from keras_slim.methods import SlimCLR


def slimclr_method(state, layout, online, momentum, backbone, method_options):
    encoder = state.scope(online)
    options = {"base": layout}
    if layout == "mocov2":
        options["hidden_dim"] = encoder.shape("fc.0.weight")[0]
        options["projection_dim"] = encoder.shape("fc.2.weight")[0]
        queue_shape = state.shape("queue")
        if len(queue_shape) != 2 or queue_shape[0] != options["projection_dim"]:
            raise ConversionError(
                f"{state.path}: 'queue' has shape {queue_shape}; MoCo v2 "
                f"keeps [{options['projection_dim']}, K]."
            )
        options["queue_size"] = queue_shape[1]
    else:
        options["hidden_dim"] = encoder.shape("fc.0.weight")[0]
        options["projection_dim"] = encoder.shape("fc.3.weight")[0]
    if layout == "mocov3":
        hidden = state.shape("predictor.0.weight")[0]
        if hidden != options["hidden_dim"]:
            raise ConversionError(
                f"{state.path}: the predictor's hidden size ({hidden}) differs "
                f"from the projector's ({options['hidden_dim']}); keras_slim's "
                f"SlimCLR uses one hidden size for both."
            )
    clash = sorted(set(options) & set(method_options))
    if clash:
        raise ConversionError(
            f"{clash} come from the checkpoint {state.path}; do not pass "
            f"them.")
    model = SlimCLR(backbone, **options, **method_options)
    _assign_head(model.projector, encoder, layout)
    if layout == "mocov3":
        _assign_predictor(model.predictor, state)
    if momentum is not None:
        key_state = state.scope(momentum)
        _check_same_widths(encoder, key_state)
        assign_backbone(model.key_backbone, key_state)
        _assign_head(model.key_projector, key_state, layout)
    if layout == "mocov2":
        model.queue.assign(state.array("queue").T)
        model.queue_pointer.assign(int(np.asarray(state.array("queue_ptr"))
                                       .reshape(-1)[0]))
    return model


def _check_same_widths(encoder, key_state):
    if encoder_widths(encoder) != encoder_widths(key_state):
        raise ConversionError(
            f"{encoder.path}: the key encoder's widths differ from the "
            f"query encoder's."
        )


def _assign_head(head, state, layout):
    first, second = head.dense_layers
    if layout == "mocov2":
        assign_dense(first, state, "fc.0")
        assign_dense(second, state, "fc.2")
        return
    has_bias = state.has("fc.0.bias")
    assign_dense(first, state, "fc.0", bias=False)
    bias = state.array("fc.0.bias") if has_bias else None
    assign_switchable(head.norms[0], state, "fc.1", bias_before=bias)
    assign_dense(second, state, "fc.3", bias=False)
    bias = state.array("fc.3.bias") if state.has("fc.3.bias") else None
    assign_switchable(head.norms[1], state, "fc.4", bias_before=bias)


def _assign_predictor(head, state):
    first, second = head.dense_layers
    assign_dense(first, state, "predictor.0", bias=False)
    assign_switchable(head.norms[0], state, "predictor.1")
    assign_dense(second, state, "predictor.3")
