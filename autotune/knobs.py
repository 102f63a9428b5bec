"""Knobs of the search space (autotune/space.py): a knob is a small frozen record with a default,
a random draw and a neighbouring value; `SpaceContext` is what knob generators look at. Kept apart
from space.py so that knob groups in modules of their own (autotune/space_online.py) import them
without importing the space that lists them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from loopweave.ir.kernel import KernelIR
from loopweave.targets import Target

Config = dict[str, object]


@dataclass(frozen=True)
class Choice:
    """A knob with a list of values; values[0] is the default (changes nothing)."""

    name: str
    values: tuple

    @property
    def default(self):
        return self.values[0]

    def sample(self, rng: random.Random):
        return rng.choice(self.values)

    def mutate(self, value, rng: random.Random):
        """A neighbouring value most of the time, any value sometimes."""
        if value in self.values and rng.random() < 0.7:
            i = self.values.index(value) + rng.choice((-1, 1))
            return self.values[min(max(i, 0), len(self.values) - 1)]
        return self.sample(rng)


@dataclass(frozen=True)
class Permutation:
    """A knob whose value is an order of `items` (a tuple); the default is their given order."""

    name: str
    items: tuple

    @property
    def default(self):
        return self.items

    def sample(self, rng: random.Random):
        order = list(self.items)
        if rng.random() < 0.5:  # most orders break a reduction's dependences: favour the given one
            rng.shuffle(order)
        return tuple(order)

    def mutate(self, value, rng: random.Random):
        order = list(value)
        if len(order) > 1:
            i, j = rng.sample(range(len(order)), 2)
            order[i], order[j] = order[j], order[i]
        return tuple(order)


Knob = Choice | Permutation


@dataclass
class SpaceContext:
    """What knob generators look at: the kernel, the sizes it is tuned for, the target."""

    kernel: KernelIR
    sizes: dict[str, int]
    target: Target
    extents: dict[str, dict[str, int]] = field(default_factory=dict)  # stmt -> var -> extent
    memo: dict = field(default_factory=dict)  # what generators compute once per space
