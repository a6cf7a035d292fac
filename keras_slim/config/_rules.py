"""The rules of a run config that no single key sees.

`option_problems` checks the recipe's and the augmentation's keyword
arguments (`method.options`, `augmentation.options`) even while other keys
have problems; `cross_field_problems` checks a config whose keys are each
valid.
"""

import difflib
import inspect

from keras_slim import methods
from keras_slim.config._checks import widths_object
from keras_slim.data import TwoViewAugmentation


def option_problems(method_name, method_options, augmentation_options):
    """Unknown or run-owned keys of `method.options` / `augmentation.options`."""
    problems = []
    if (method_name in methods.recipe_names()
            and isinstance(method_options, dict)):
        _check_method_options(method_name, method_options, problems)
    if isinstance(augmentation_options, dict):
        _check_augmentation_options(augmentation_options, problems)
    return problems


def cross_field_problems(config):
    """What a `RunConfig` whose keys are each valid refuses as a whole."""
    problems = []
    method = config.method
    allowed = methods.base_names(method.name)
    if method.base not in (None,) + allowed:  # None: the default base
        problems.append(("method.base", f"{method.name} takes base "
                                        f"{' | '.join(allowed)}; got "
                                        f"{method.base!r}"))
    problems.extend(methods.recipe_class(method.name).config_problems(config))
    if method.slow_start and config.train.learning_rate_per == "epoch":
        problems.append(("train.learning_rate_per", "the slow-start "
                         "schedules change the rate per batch; use auto or "
                         "batch with method.slow_start"))
    _check_eval_widths(config, problems)
    if config.data.stream and config.data.image_size is None:
        problems.append(("data.image_size", "data.stream needs the size "
                         "the streamed images are decoded to, e.g. 256"))
    if config.augmentation.crop_size is None and config.data.image_size is None:
        problems.append(("augmentation.crop_size",
                         "set augmentation.crop_size or data.image_size "
                         "(the side of the training views)"))
    return problems


def _run_owned_options():
    """Keys a pretraining run sets itself from other config values (those of
    every recipe: the message is the same whichever recipe is asked for)."""
    owned = set()
    for name in methods.recipe_names():
        owned.update(methods.recipe_class(name).run_owned_options)
    return owned


def _check_method_options(name, options, problems):
    cls = methods.recipe_class(name)
    accepted = set(cls.options())
    owned = _run_owned_options()
    for key in options:
        path = f"method.options.{key}"
        if key in owned:
            problems.append((path, "is set by the run from the config "
                                   "(method.base / method.slow_start / "
                                   "train.epochs / seed); remove it"))
        elif key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((path, f"{cls.__name__} has no argument "
                                   f"{key!r}{hint}"))


def _check_augmentation_options(options, problems):
    accepted = _constructor_arguments(TwoViewAugmentation) - {"image_size"}
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"known: {', '.join(sorted(accepted))}")
            problems.append((f"augmentation.options.{key}",
                             f"not an augmentation setting; {hint}"))


def _constructor_arguments(cls):
    accepted = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("keras_slim"):
            params = inspect.signature(klass.__init__).parameters
            accepted |= {p for p in params if p not in ("self", "kwargs")}
    return accepted


def _check_eval_widths(config, problems):
    requested = config.evaluation.eval_widths
    if requested is None:
        return
    widths = widths_object(config.backbone.widths)
    for width in requested:
        try:
            widths.validate(width)
        except (ValueError, TypeError) as err:
            problems.append(("evaluation.eval_widths", str(err)))
