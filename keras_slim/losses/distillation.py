"""SlimCLR's online distillation from the full width."""

from keras import ops

from keras_slim.losses._tensors import as_float32
from keras_slim.losses._tensors import scalar_float32


def distillation_loss(student_logits, teacher_logits, temperature,
                      form="kl"):
    """SlimCLR's online distillation from the full width, per example.

    `KD_i = T^2 * KL(softmax(sg(t_i) / T) || softmax(s_i / T))`
    (Zhao et al., "Slimmable Networks for Contrastive Self-supervised
    Learning", arXiv 2209.15525; Hinton et al. 2015 for the `T^2` factor),
    where `t` are the full-width logits of the same step and `s` the logits of
    a smaller width. The teacher's gradient is stopped here. SlimCLR writes it
    as the cross-entropy `-T^2 sum p_t log p_s`; the KL differs from it by the
    teacher entropy, a constant for the student, so the gradient w.r.t. `s`
    is the same, `T * (softmax(s / T) - softmax(t / T))`, while the logged
    value reads 0 when the student matches the teacher.

    Args:
        student_logits: `(batch, classes)` logits of the student (sub-width).
        teacher_logits: `(batch, classes)` logits of the teacher (full width).
        temperature: positive float or scalar tensor (SlimCLR: 5 for MoCo v2
            and SimCLR, 1 for MoCo v3).
        form: `"kl"` (reads 0 when the student matches) or
            `"cross_entropy"`, `-T^2 sum p_t log p_s` (SlimCLR's
            `kd_distill_loss_v2`, whose value includes the teacher's entropy).
            Same gradient.

    Returns:
        float32 vector of shape `(batch,)`.
    """
    if form not in ("kl", "cross_entropy"):
        raise ValueError(
            f"`form` must be 'kl' or 'cross_entropy', got {form!r}.")
    temperature = scalar_float32(temperature)
    teacher = ops.stop_gradient(as_float32(teacher_logits))
    student = as_float32(student_logits)
    teacher_log_probs = ops.log_softmax(teacher / temperature, axis=-1)
    student_log_probs = ops.log_softmax(student / temperature, axis=-1)
    teacher_probs = ops.exp(teacher_log_probs)
    if form == "cross_entropy":
        value = -ops.sum(teacher_probs * student_log_probs, axis=-1)
    else:
        value = ops.sum(
            teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)
    return value * (temperature * temperature)
