# SPDX-License-Identifier: MIT
"""kill -9 anywhere (tests/reliability/campaign.py): PB_KILLS kills (make
check: 20; make check-reliability: 100), a seed from PB_SEED or chosen and
printed, so that a failing campaign can be run again as it was."""

import os
import random

from tests.reliability.campaign import run


def test_kill9_campaign(work, fakeguest):
    kills = int(os.environ.get("PB_KILLS", "20"))
    seed = int(os.environ.get("PB_SEED", random.randrange(1 << 30)))
    print(f"kill -9 campaign: {kills} kills, seed {seed} (PB_SEED={seed} to repeat)")
    c = run(kills, work, seed, log=print)
    assert c.kills == kills
