"""recipe: everything that shapes one variant's fit, resolved from params.yaml into data/recipes/<variant>.json.

Why a stage of its own: a variant inherits the top-level `train` keys its own `train:` block does not
set, and dvc.yaml cannot declare "the keys this variant inherits". This stage reads the whole blocks
and writes the variant's effective settings; the fit depends on this file, so it reruns only when a
setting it uses changed (`-S train.batch_size=64` leaves a variant that sets its own batch size alone).
How the variant's lists rank (`popularity_prior`, and any setting its architecture marks `rank_only`)
is not in it: no fit reads it.
"""

from __future__ import annotations

from movierec import recipes
from movierec.params import core, variants
from movierec.params import data as data_params
from movierec.paths import recipe
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    v = variants.load(raw, args.variant, args.params)
    recipes.write(recipe(args.variant), v, v.module.shared(raw, args.params), data_params.load(raw, args.params).rating_range)


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__, variant=True))
