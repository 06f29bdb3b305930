"""`seqgen recipe list|run`: a recipe's stages end to end (:mod:`seqgen.recipes.runner`)."""
from __future__ import annotations

from seqgen.cli.types import nonneg_float as _nonneg_float
from seqgen.cli.types import positive_int as _positive_int

def _cmd_recipe(a):
    from seqgen.recipes import runner as recipes

    if a.action == "list":
        for name, desc in recipes.list_recipes():
            print(f"{name:24s} {desc}")
        return
    recipes.run_recipe(a.name, preset=a.preset, data=a.data, workdir=a.workdir, max_minutes=a.max_minutes,
                       max_steps=a.max_steps, overrides=a.set)


def add(sub):
    p = sub.add_parser("recipe", help="run a recipe end to end (prepare -> train -> sample -> evaluate)",
                       description="Recipes live in recipes/NAME/ (recipe.yaml, presets, README).")
    ps = p.add_subparsers(dest="action", required=True, metavar="{run,list}")
    ps.add_parser("list", help="list the recipes")
    r = ps.add_parser("run", help="run a recipe")
    r.add_argument("name", metavar="NAME")
    r.add_argument("--preset", default=None, help="preset (e.g. tiny, small, full)")
    r.add_argument("--data", default=None, metavar="SRC", help="input corpus (default: the embedded corpus)")
    r.add_argument("--workdir", default=None, metavar="W", help="working folder (default: runs/NAME-PRESET)")
    r.add_argument("--max-minutes", type=_nonneg_float, default=None, help="training time budget")
    r.add_argument("--max-steps", type=_positive_int, default=None)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.set_defaults(func=_cmd_recipe)
    p.set_defaults(func=_cmd_recipe)
