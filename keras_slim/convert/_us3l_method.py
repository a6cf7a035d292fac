"""A US3L pretraining file as a whole `keras_slim.methods.US3L` recipe.

The official wrappers (`utils/ssl_algorithms/simclr.py` SimCLR_Momentum,
`byol.py` BYOL, `simsiam.py` SimSiam) replace the ResNet's `fc` with the
projector `encoder_q.fc` (`fc.0` the ResNet's biased Linear, BN `fc.1`,
ReLU, Linear `fc.3`, BN `fc.4`, ReLU, Linear `fc.6`; SimSiam adds the
affine-free BN `fc.7`), keep the EMA teacher at `encoder_k.` (not SimSiam)
and the predictors at `predictor.` (SimCLR_Momentum: the one the sub-widths
distill through; BYOL: the full width's, with `predictor_new.` for the
sub-widths; SimSiam: the only one). Which wrapper wrote a file follows from
its tensors: a teacher and a biased `fc.3` (SimCLR), a teacher and no `fc.3`
bias (BYOL), no teacher and `fc.7` (SimSiam).
"""

from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_dense
from keras_slim.convert._us3l_layout import assign_affine
from keras_slim.convert._us3l_layout import assign_backbone
from keras_slim.convert._us3l_layout import torch_layers
from keras_slim.methods import US3L

# Options the file decides; a caller may not pass them.
_FROM_FILE = ("base", "projection_dim", "hidden_dim", "projector_layers",
              "projector_biases")


def us3l_method(state, backbone, method_options):
    """The `US3L` recipe around `backbone` with the file's heads and teacher.

    Args:
        state: the file's `StateDict` (no `module.` prefix), the backbone at
            `encoder_q.`.
        backbone: the converted online backbone.
        method_options: other `US3L` arguments.
    """
    online = state.scope("encoder_q.")
    base = _base(state, online)
    clash = sorted(set(_FROM_FILE) & set(method_options))
    if clash:
        raise ConversionError(
            f"{clash} come from the checkpoint {state.path}; do not pass "
            f"them.")
    hidden = online.shape("fc.0.weight")[0]
    predictor = "predictor_new" if base == "byol" else "predictor"
    if state.shape(f"{predictor}.0.weight")[0] != hidden:
        raise ConversionError(
            f"{state.path}: the predictor's hidden size "
            f"({state.shape(f'{predictor}.0.weight')[0]}) differs from the "
            f"projector's ({hidden}); keras_slim's US3L uses one for both.")
    model = US3L(backbone, base=base, hidden_dim=hidden,
                 projection_dim=online.shape("fc.6.weight")[0],
                 projector_layers=3, projector_biases=True, **method_options)
    _assign_projector(model.projector, online)
    if base == "simsiam":
        _assign_predictor(model.predictor, state, "predictor")
        return model
    _assign_predictor(model.distill_predictor, state, predictor)
    if base == "byol":
        _assign_predictor(model.predictor, state, "predictor")
    teacher = state.scope("encoder_k.")
    for (conv, _), _, _ in torch_layers(model.teacher_backbone):
        if not teacher.has(f"{conv}.weight"):
            raise ConversionError(
                f"{state.path}: the teacher 'encoder_k.' lacks "
                f"'{conv}.weight' that 'encoder_q.' has: incomplete file.")
    assign_backbone(model.teacher_backbone, teacher)
    _assign_projector(model.teacher_projector, teacher)
    return model


def _base(state, online):
    if not state.has("encoder_q.fc.6.weight"):
        raise ConversionError(
            f"{state.path} has no projector 'encoder_q.fc.0..6': as_method "
            f"needs a US3L pretraining file (SimCLR_Momentum, BYOL or "
            f"SimSiam with SSL.SETTING.MLP); convert the backbone alone with "
            f"as_method=False.")
    teacher = state.has("encoder_k.conv1.weight")
    if not teacher:
        if online.has("fc.7.running_mean") and state.has(
                "predictor.0.weight"):
            return "simsiam"
        raise ConversionError(
            f"{state.path} has no EMA teacher ('encoder_k.') and is no "
            f"SimSiam file: keras_slim's US3L recipes are SimCLR_Momentum, "
            f"BYOL and SimSiam.")
    if online.has("fc.3.bias"):
        if not state.has("predictor.0.weight"):
            raise ConversionError(
                f"{state.path}: a SimCLR_Momentum file without 'predictor.' "
                f"(SSL.SETTING.PREDICTOR False): keras_slim's US3L distills "
                f"the sub-widths through a predictor.")
        return "simclr"
    if not state.has("predictor_new.0.weight"):
        raise ConversionError(
            f"{state.path}: a BYOL file whose sub-widths share the full "
            f"width's predictor (no 'predictor_new.'); keras_slim's US3L "
            f"gives them a predictor of their own.")
    return "byol"


def _assign_projector(head, state):
    dense = head.dense_layers
    for layer, key in zip(dense, ("fc.0", "fc.3")):
        assign_dense(layer, state, key)
    for norm, key in zip(head.norms, ("fc.1", "fc.4")):
        assign_affine(norm, state, key)
    # SimSiam's fc.6 bias is frozen (requires_grad False) before an
    # affine-free BN, which removes it in training: not converted.
    assign_dense(dense[2], state, "fc.6", bias=dense[2].use_bias)


def _assign_predictor(head, state, key):
    first, second = head.dense_layers
    assign_dense(first, state, f"{key}.0")
    assign_affine(head.norms[0], state, f"{key}.1")
    assign_dense(second, state, f"{key}.3")

