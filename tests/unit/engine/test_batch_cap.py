"""CPU batch cap (measured or configured) and the ORT spinning setting."""
from __future__ import annotations

import time

import pytest
from tests.unit.engine.conftest import make_spec, rois_grid

from roiclass.server.engine.config import EngineConfig
from roiclass.server.engine.probe import preferred_batch, probe_sizes


def test_probe_sizes_are_powers_of_two_then_the_max():
    assert probe_sizes(1) == [1]
    assert probe_sizes(8) == [1, 2, 4, 8]
    assert probe_sizes(20) == [1, 2, 4, 8, 16, 20]


def test_preferred_batch_stops_where_items_get_slower():
    # 1 ms per item up to 4, then 3 ms per item: the best size is 4.
    def run(n: int) -> None:
        time.sleep(n * (0.001 if n <= 4 else 0.003))

    cap, per_item = preferred_batch(run, 32, floor=1)
    assert cap == 4
    assert 8 in per_item and 32 not in per_item  # 8 was clearly slower: probing stopped


def test_preferred_batch_never_goes_below_the_floor():
    cap, _ = preferred_batch(lambda n: time.sleep(0.001 * n * n), 32, floor=8)
    assert cap == 8  # batch 1 is fastest per item, but 8 is the floor
    assert preferred_batch(lambda n: None, 4, floor=8)[0] == 4  # never above the model's max


def test_preferred_batch_keeps_growing_while_items_get_cheaper():
    cap, per_item = preferred_batch(lambda n: time.sleep(0.004 + 0.0001 * n), 16)
    assert cap == 16 and sorted(per_item) == [1, 2, 4, 8, 16]


def test_configured_cap_limits_batches(make_engine, tiny_onnx, chelsea):
    eng = make_engine(cpu_batch_cap=3)
    eng.load(make_spec(tiny_onnx, max_batch_size=16, max_queue_delay_us=20000))
    model = eng.resolve("tiny")
    assert model.max_batch == 3 and model.model_max_batch == 16
    out = eng.classify(model, chelsea, "RGB8", rois_grid(10, 1)).result(timeout=10)
    assert out.probabilities.shape == (10, 3)
    c = eng.counters("tiny", "1")
    assert c["max_batch"] == 3 and c["batches"] == 4  # 3 + 3 + 3 + 1


def test_measured_cap_is_within_the_model_max(make_engine, tiny_onnx):
    eng = make_engine()  # cpu_batch_cap=-1: measured at load
    eng.load(make_spec(tiny_onnx, max_batch_size=8))
    # and with ORT spinning only during runs, the sessions load and serve
    spinning = make_engine(cpu_spinning="run")
    spinning.load(make_spec(tiny_onnx, max_batch_size=4))
    assert spinning.resolve("tiny").max_batch == 4
    model = eng.resolve("tiny")
    assert model.max_batch == model.model_max_batch == 8  # the floor is 8


@pytest.mark.parametrize("kw, message", [
    (dict(cpu_batch_cap=-2), "cpu_batch_cap"),
    (dict(cpu_spinning="sometimes"), "allowed run, off, always"),
])
def test_bad_settings_name_the_field(kw, message):
    with pytest.raises(ValueError, match=message):
        EngineConfig(**kw)


def test_spinning_accepts_the_old_booleans():
    assert EngineConfig(cpu_spinning=True).cpu_spinning == "always"
    assert EngineConfig(cpu_spinning=False).cpu_spinning == "off"
    assert EngineConfig().cpu_spinning == "off"


def test_preferred_batch_interleaves_its_rounds_and_keeps_each_sizes_fastest_run():
    # A machine that is slow for a while: sizes timed one after the other would
    # charge the slow spell to one size; rounds in turn spread it over all.
    order: list[int] = []
    slow_calls = set(range(4, 8))  # the 5th to 8th runs: the second round

    def run(n: int) -> None:
        k = len(order)
        order.append(n)
        time.sleep(0.005 * n * (3 if k in slow_calls else 1))

    cap, per_item = preferred_batch(run, 8, runs=3, floor=1, budget_s=10)
    assert order == [1, 2, 4, 8] * 3  # every round visits every size in turn
    assert all(0.005 <= t < 0.0075 for t in per_item.values())  # the slow round is not taken
    assert cap == 8
