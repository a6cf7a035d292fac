"""The optimizer of a fine-tuning run (`finetune.*` of the config)."""

import keras

from keras_slim import optimizers

__all__ = ["finetune_optimizer"]


def finetune_optimizer(spec, total_steps, model):
    """The optimizer of the `finetune` config section `spec` for `model`.

    A warm-up and cosine over `total_steps`, and weight decay on every
    weight but the biases and normalization scales/offsets (found by layer
    type, `keras_slim.optimizers.parameter_groups`): SlimCLR's supervised
    `main_slim.py` (`get_parameter_groups(..., norm_weight_decay=0.0)`,
    `lr_scheduler(mode="cos", slow_start_iters=warmup_proportion * all)`).

    Args:
        spec: the validated `finetune` section.
        total_steps: int, the run's training steps.
        model: the model whose `trainable_variables` it will update.
    """
    warmup = int(round(spec.warmup_fraction * total_steps))
    schedule = optimizers.WarmupCosine(peak=spec.learning_rate,
                                       total_steps=total_steps,
                                       warmup_steps=min(warmup, total_steps))
    decay = spec.weight_decay
    name = spec.optimizer
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=decay)
    elif name == "sgd_decoupled":
        # Keras' SGD: decoupled decay, outside the momentum.
        optimizer = keras.optimizers.SGD(schedule, momentum=spec.momentum,
                                         weight_decay=decay or None)
    else:
        # The official torch.optim.SGD: L2 coupled into the gradient.
        optimizer = optimizers.CoupledSGD(schedule, momentum=spec.momentum,
                                          weight_decay=decay)
    if decay:
        optimizer.exclude_from_weight_decay(
            var_list=list(optimizers.parameter_groups(model).no_decay))
    return optimizer
