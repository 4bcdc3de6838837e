"""RunLog: each step records its time and memory."""

from __future__ import annotations

from recsys.pipeline.runlog import RunLog


def test_a_step_records_the_peak_memory_so_far() -> None:
    log = RunLog()
    with log.step("allocate") as step:
        block = bytearray(64 * 2**20)
        step.rows = len(block)
    recorded = log.steps[0]
    assert recorded.rss_gib > 0.05 and recorded.peak_gib >= recorded.rss_gib
