"""`seqgen average`: a run directory holding the mean weights of several checkpoints of a run."""
from __future__ import annotations

import json


def _cmd_average(a):
    from seqgen.train.averaging import average_checkpoints, parse_steps

    res = average_checkpoints(a.run, parse_steps(a.checkpoint, a.run), a.out)
    print(json.dumps(res))
    return 0


def add(sub):
    """argparse adder of `seqgen average`."""
    p = sub.add_parser("average", help="average the weights of several checkpoints into a new run",
                       description="Write a new run directory whose one checkpoint holds the element-wise mean "
                                   "of the weights of RUN's checkpoints at the given steps (keep them with "
                                   "train.keep_checkpoint_every). evaluate, translate, generate and sample take "
                                   "it as any run; choose the steps on the dev split.")
    p.add_argument("--run", required=True)
    p.add_argument("--checkpoint", required=True, metavar="STEP,STEP[,...]|last:N",
                   help="the steps to average, or the newest N kept checkpoints")
    p.add_argument("--out", required=True, metavar="RUN2", help="the new run directory")
    p.set_defaults(func=_cmd_average)
