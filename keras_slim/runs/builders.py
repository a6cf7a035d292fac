"""Turn a validated configuration into backbones, recipes and optimizers."""

import math

import keras

from keras_slim import backbones
from keras_slim import methods
from keras_slim import optimizers
from keras_slim.config import as_run_config
from keras_slim.config import widths_from_config
from keras_slim.runs._run_backend import run_backend

__all__ = [
    "build_backbone",
    "build_method",
    "build_optimizer",
    "build_strategy",
    "training_steps",
]


def build_backbone(config, channels, seed=None):
    """The slimmable backbone of `config` for `channels`-channel images."""
    config = as_run_config(config)
    spec = config.backbone
    widths = widths_from_config(config)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    shape = (None, None, channels)
    if spec.name == "mobilenet_v2":
        return backbones.SlimMobileNetV2(
            widths=widths, input_shape=shape,
            synchronized=spec.synchronized,
        )
    return backbones.SlimResNet(
        depth=spec.depth, stem=spec.stem, base_width=spec.base_width,
        widths=widths, input_shape=shape, synchronized=spec.synchronized,
        padding=spec.padding,
        input_normalization=spec.input_normalization,
        zero_init_residual=spec.zero_init_residual,
    )


def training_steps(config, steps_per_epoch):
    """(total steps, slow-start steps, warmup steps) of a run."""
    config = as_run_config(config)
    train = config.train
    total = train.epochs * steps_per_epoch
    slow = int(round(config.method.slow_start * total))
    warmup = int(round(train.warmup_epochs * steps_per_epoch))
    return total, slow, min(warmup, total)


def build_method(config, backbone, steps_per_epoch):
    """The recipe of `config` around `backbone` (from the recipe registry)."""
    config = as_run_config(config)
    total, slow, _ = training_steps(config, steps_per_epoch)
    recipe = methods.recipe_class(config.method.name)
    return recipe.from_run_config(backbone, config, total_steps=total,
                                  slow_start_steps=slow,
                                  steps_per_epoch=steps_per_epoch)


def build_optimizer(config, steps_per_epoch):
    """The optimizer of `config` with its warmup-cosine (or slow-start) rate."""
    config = as_run_config(config)
    train = config.train
    total, slow, warmup = training_steps(config, steps_per_epoch)
    rate = train.learning_rate
    if slow and train.slow_start_schedule == "official":
        # SlimCLR's main_ssl.py: one cosine whose scale becomes
        # --slim_start_lr when the sub-networks join (params.py's 1e-4 when
        # a script passes none, as the MoCo v2 script does).
        restart = train.restart_learning_rate
        schedule = optimizers.SlimStartCosine(
            peak=rate, total_steps=total, slim_start_step=slow,
            slim_start_learning_rate=1e-4 if restart is None else restart,
            warmup_steps=train.warmup_epochs * steps_per_epoch,
            end=max(train.final_learning_rate, 1e-8),
        )
    elif slow:
        schedule = optimizers.SlowStartCosine(
            peak=rate, total_steps=total, slow_start_steps=slow,
            warmup_steps=min(warmup, slow),
            restart_peak=train.restart_learning_rate or rate,
            end=train.final_learning_rate,
        )
    else:
        schedule = optimizers.WarmupCosine(
            peak=rate, total_steps=total, warmup_steps=warmup,
            end=train.final_learning_rate,
            steps_per_epoch=(steps_per_epoch if rate_per_epoch(config)
                             else None),
        )
    name = train.optimizer
    decay = train.weight_decay
    if name == "lars":
        return optimizers.LARS(schedule, momentum=train.momentum,
                               weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=decay)
    if name == "lamb":
        return keras.optimizers.Lamb(schedule, weight_decay=decay)
    if name == "sgd_decoupled":
        # Keras' SGD: decoupled decay (w -= lr * decay * w), ~10x weaker
        # than the same number coupled at momentum 0.9.
        return keras.optimizers.SGD(schedule, momentum=train.momentum,
                                    weight_decay=decay or None)
    # The official code's torch.optim.SGD: L2 coupled into the gradient.
    return optimizers.CoupledSGD(schedule, momentum=train.momentum,
                                 weight_decay=decay)


def rate_per_epoch(config):
    """Whether the learning rate changes once per epoch (else per batch)."""
    config = as_run_config(config)
    per = config.train.learning_rate_per
    if per == "auto":  # the recipe's official code
        recipe = methods.recipe_class(config.method.name)
        return recipe.learning_rate_per == "epoch"
    return per == "epoch"


def build_strategy(config):
    """The `tf.distribute` strategy a run asks for.

    On JAX, a `keras.distribution` in its place (`mirrored`:
    `DataParallel` over the local devices; `multi_worker` is refused).
    """
    return run_backend().build_strategy(as_run_config(config).train.strategy)


def global_batch_check(config, strategy):
    """A batch that the replicas cannot split evenly is refused up front."""
    replicas = strategy.num_replicas_in_sync
    batch = as_run_config(config).train.batch_size
    if batch % replicas:
        raise ValueError(
            f"train.batch_size={batch} is not divisible by the "
            f"{replicas} replicas of the strategy; use a multiple of "
            f"{replicas}, e.g. {replicas * max(1, math.ceil(batch / replicas))}."
        )
