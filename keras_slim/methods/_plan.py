"""Which widths a training step runs: slots, phases, in-graph sampling.

A step trains a list of *slots*. A static slot always runs one width; a
random slot runs one width of a candidate grid chosen in the graph (a
switch in the step module, so shapes stay static and the trace count stays bounded by
the grid, never by the step count). Randomness is stateless, seeded by
`(seed, step)`: every replica, worker and backend draws the same widths.

Training moves through *phases* (SlimCLR's slow start, US3L's dynamic
sampling); the phase is a function of the step, chosen in the graph too.
"""

import dataclasses

import numpy as np
from keras import ops

from keras_slim._stateless_random import stateless_uniform
from keras_slim.width import width_name


@dataclasses.dataclass(frozen=True)
class Slot:
    """One width (or one random choice of widths) trained in a step.

    Attributes:
        name: metric prefix (`w0.5`, or `wmin`/`wrand1` for sampled widths).
        candidates: the widths it can run (one for a static slot).
        weight: loss weight of the slot.
        is_teacher: whether the slot is the largest width, whose outputs
            teach the other slots (SlimCLR's online distillation).
        draw: for a random slot, which of the step's random draws it uses.
    """

    name: str
    candidates: tuple
    weight: float = 1.0
    is_teacher: bool = False
    draw: int = -1

    @property
    def is_static(self):
        return self.draw < 0


def static_slots(widths, weights):
    """One static slot per width of a list, the largest first and teaching."""
    return [
        Slot(width_name(w), (w,), float(lam), is_teacher=(i == 0))
        for i, (w, lam) in enumerate(zip(widths, weights))
    ]


def width_grid(largest, smallest, step):
    """Widths from `largest` down to `smallest` every `step` (both included)."""
    count = int(round((largest - smallest) / step))
    grid = [round(largest - i * step, 6) for i in range(count + 1)]
    if grid[-1] > smallest + 1e-9:
        grid.append(smallest)
    grid[-1] = smallest
    return tuple(grid)


def sandwich_draws(seed, step, grid_size, valid_count, draws):
    """Indices of `draws` distinct grid widths strictly between max and min.

    The grid runs from the largest width (index 0) down; the first
    `valid_count` entries are allowed in this phase, index 0 is the max slot
    and index `valid_count - 1` the min slot. Returns an int32 tensor of
    `draws` indices; a draw that cannot be filled without repeating a width
    gets `grid_size` (the "skip" branch).
    """
    scores = stateless_uniform(grid_size, seed, step)
    index = ops.arange(grid_size, dtype="int32")
    inside = ops.logical_and(index > 0, index < valid_count - 1)
    scores = ops.where(inside, scores, 2.0 + ops.cast(index, "float32"))
    order = ops.argsort(scores)[:draws]
    available = ops.sum(ops.cast(inside, "int32"))
    filled = ops.arange(draws, dtype="int32") < available
    # Ascending indices: the drawn widths run largest first (US-Nets' and
    # US3L's order), skips last.
    return ops.sort(ops.where(filled, ops.cast(order, "int32"), grid_size))


def distinct_draws(seed, step, slots):
    """`sandwich_draws` for the random slots of a phase's `slots`.

    The phase's range runs from the grid's largest width down to its
    smallest static slot.
    """
    random_slots = [s for s in slots if not s.is_static]
    return sandwich_draws(seed, step, len(random_slots[0].candidates),
                          _valid_count(slots), len(random_slots))


def distinct_drawable(slots):
    """The grid indices `distinct_draws(seed, step, slots)` can return at
    some step, the skip aside: the widths strictly inside the phase."""
    return tuple(range(1, _valid_count(slots) - 1))


def phase_draws(model, slots, step):
    """`(draws, traced)` of a phase's random slots at `step`: the drawn
    candidate indices and `traced_candidates`; `(None, None)` when every slot
    of the phase is static."""
    if all(s.is_static for s in slots):
        return None, None
    return model.draw_indices(slots, step), traced_candidates(model, slots)


def traced_candidates(model, slots):
    """The candidate indices a random slot's switch holds a branch for.

    The recipe's `drawable_indices(slots)`, unless a subclass overrides
    `draw_indices` below the class that defines `drawable_indices` (draws of
    its own that it did not declare): then every candidate.
    """
    mro = type(model).__mro__
    draws = next(c for c in mro if "draw_indices" in vars(c))
    declared = next(c for c in mro if "drawable_indices" in vars(c))
    if issubclass(declared, draws):
        return model.drawable_indices(slots)
    return tuple(range(len(next(s for s in slots if not s.is_static)
                           .candidates)))


def _valid_count(slots):
    grid = next(s for s in slots if not s.is_static).candidates
    smallest = min(min(s.candidates) for s in slots if s.is_static)
    return sum(1 for w in grid if w >= smallest - 1e-9)


def branch_table(count, drawable):
    """The branches a random slot over `count` candidates traces.

    A compiled step traces every branch of its switch, including those the
    draw can never pick (the largest width, widths below the phase's range):
    a phased US3L run at the default grid would trace 39 width passes where
    24 can run. Returns `(live, table)`: `live` the candidate indices that
    get a branch, in order, and `table[index]` the branch of a drawn index
    (`len(live)`, the skip, for the others and for the skip `count`).
    """
    live = tuple(sorted(drawable))
    table = [len(live)] * (count + 1)
    for position, index in enumerate(live):
        table[index] = position
    return live, table


def uniform_drawable(grid, lowest):
    """The grid indices `uniform_draws(seed, step, grid, lowest, n)` can
    return at some step (its own float32 test of the range)."""
    below = np.asarray(grid, np.float32) < np.float32(lowest - 1e-9)
    inside = tuple(i for i in range(1, len(grid)) if not below[i])
    # No width inside: every distance is infinite and argmin gives 0.
    return inside or (0,)


def uniform_draws(seed, step, grid, lowest, draws):
    """Indices of `draws` widths drawn uniformly from `[lowest, grid[0]]`.

    US3L's official sampler (`random.uniform(min_width, max_width)`), each
    draw rounded to the nearest width of the grid below the largest (static
    shapes: one compiled branch per grid width). The largest is left out: a
    continuous draw never equals it officially, and a slot at the largest
    width would be trained as the teacher; draws next to it round to the
    grid's second width. Returns int32 grid indices, ascending (widths
    descending).
    """
    largest = float(grid[0])
    # float32 on every backend (JAX has no float64 by default), so that
    # TensorFlow and JAX round a draw to the same grid width.
    values = lowest + (largest - lowest) * stateless_uniform(draws, seed, step)
    candidates = ops.convert_to_tensor(grid, "float32")
    distance = ops.abs(values[:, None] - candidates[None, :])
    outside = ops.logical_or(candidates < lowest - 1e-9,
                             ops.arange(len(grid)) == 0)
    distance = ops.where(outside[None, :],
                         ops.convert_to_tensor(float("inf"), "float32"),
                         distance)
    return ops.sort(ops.cast(ops.argmin(distance, axis=1), "int32"))
