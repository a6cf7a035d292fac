"""Which widths a supervised slimmable step trains, drawn in the graph.

A width list trains all its widths every step. A width range follows the
sandwich rule of universally slimmable networks: its largest width, a few
widths drawn at random from a grid over the range, its smallest. A drawn
width runs through a `tf.switch_case` over the grid (`_tf_step.run_slot`),
so every shape stays static and the number of traced branches is bounded by
the grid.
"""

import dataclasses

from keras_slim.width import width_name


@dataclasses.dataclass(frozen=True)
class Slot:
    """One width of a step, or one draw from `candidates` (`draw >= 0`)."""

    name: str
    candidates: tuple
    draw: int = -1


@dataclasses.dataclass(frozen=True)
class Plan:
    """The slots of every step, the largest width's first."""

    slots: tuple

    def all_widths(self):
        return sorted({w for slot in self.slots for w in slot.candidates},
                      reverse=True)

    @property
    def num_draws(self):
        return sum(1 for slot in self.slots if slot.draw >= 0)


def plan(widths, num_random_widths, grid_step):
    """The step's slots for a `keras_slim.Widths` list or range."""
    if not widths.is_range:
        return Plan(tuple(Slot(width_name(w), (w,)) for w in widths))
    if not grid_step > 0:
        raise ValueError(f"`grid_step` must be > 0, got {grid_step!r}.")
    largest, smallest = widths.largest, widths.smallest
    count = int(round((largest - smallest) / grid_step))
    inside = tuple(
        round(largest - i * grid_step, 6) for i in range(1, count)
        if largest - i * grid_step > smallest + 1e-9)
    if num_random_widths and not inside:
        raise ValueError(
            f"No width lies strictly between {smallest:g} and {largest:g} on "
            f"a grid of step {grid_step:g}: choose a smaller `grid_step` or "
            f"num_random_widths=0.")
    random = tuple(Slot(f"wrand{i + 1}", inside, draw=i)
                   for i in range(num_random_widths))
    return Plan((Slot("wmax", (largest,)),) + random
                + (Slot("wmin", (smallest,)),))

