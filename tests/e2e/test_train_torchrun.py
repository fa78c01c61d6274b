"""Train page in a real browser, "Run on: N processes (torchrun)": a real 2-process group.

One short run of the default preset on the server's small dataset, launched by the server's
job manager as a torchrun group, followed to its end through its record.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from fmnist_core.runs import find_run

from .conftest import Server
from .ui import TRAIN, assert_no_errors, main, open_page, wait_idle

FINISH_S = 300  # two processes importing torch, then a small run, on a loaded machine
SAVED = re.compile(r"Saved as run (\S+), now the active model")


def test_two_torchrun_processes_train_one_run_shown_live(page: Page, server: Server) -> None:
    open_page(page, TRAIN)
    train = main(page).get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled(timeout=FINISH_S * 1000)  # an earlier test's run has ended
    main(page).get_by_text("N processes (torchrun)", exact=True).click()
    expect(main(page).get_by_role("radio", name="N processes (torchrun)")).to_be_checked()
    wait_idle(page)
    train.click()
    expect(main(page).get_by_text("2 torchrun processes")).to_be_visible()
    success = main(page).get_by_test_id("stAlertContentSuccess")
    expect(success).to_contain_text("Finished", timeout=FINISH_S * 1000)
    run_id = SAVED.search(success.inner_text()).group(1)
    run = find_run(run_id, server.runs_dir)
    assert run.status == "finished" and run.epochs == list(range(1, run.config.epochs + 1))
    assert (run.info["world_size"], run.info["backend"]) == (2, "gloo")
    assert_no_errors(page)
