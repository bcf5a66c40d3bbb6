"""The balance controller of seed 004: pauses the winner, resumes with hysteresis, never both."""

from gan_core.balance import BalanceController
from gan_core.config import BalanceConfig


def controller(**kw) -> BalanceController:
    cfg = BalanceConfig(enabled=True, lower=0.3, upper=0.8, smoothing=0.0, hysteresis=0.05, warmup=0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return BalanceController(cfg)


def test_pauses_discriminator_when_it_wins_and_resumes_with_hysteresis():
    c = controller()
    assert c.update(0.5, 1) == []
    events = c.update(0.2, 2)  # D error low: the discriminator is winning
    assert [(e["side"], e["action"]) for e in events] == [("d", "pause")]
    assert (c.train_d, c.train_g) == (False, True)
    assert c.update(0.32, 3) == []  # back above lower but inside the hysteresis band: still paused
    assert not c.train_d
    events = c.update(0.36, 4)
    assert [(e["side"], e["action"]) for e in events] == [("d", "resume")]
    assert c.train_d and c.train_g


def test_pauses_generator_when_it_wins_and_resumes_with_hysteresis():
    c = controller()
    assert [(e["side"], e["action"]) for e in c.update(0.9, 1)] == [("g", "pause")]
    assert (c.train_d, c.train_g) == (True, False)
    assert c.update(0.78, 2) == [] and not c.train_g
    assert [(e["side"], e["action"]) for e in c.update(0.7, 3)] == [("g", "resume")]


def test_never_pauses_both_and_logs_every_decision():
    c = controller(smoothing=0.5)
    errors = [0.1, 0.05, 2.0, 3.0, 0.0, 0.0, 0.0, 5.0, 5.0, 0.5, 0.5, 0.1] * 5
    for step, e in enumerate(errors):
        c.update(e, step)
        assert c.train_d or c.train_g
    assert len(c.events) >= 4
    assert all({"step", "side", "action", "error", "why"} <= set(e) for e in c.events)
    # pauses and resumes of a side alternate
    for side in "dg":
        actions = [e["action"] for e in c.events if e["side"] == side]
        assert all(a != b for a, b in zip(actions, actions[1:], strict=False))


def test_disabled_controller_never_pauses_and_smoothing_smooths():
    off = BalanceController(BalanceConfig(enabled=False))
    for step in range(50):
        off.update(0.0, step)
    assert off.train_d and off.train_g and off.events == []
    c = controller(smoothing=0.9)
    c.update(0.5, 0)
    c.update(0.0, 1)  # one outlier moves the smoothed error only by 10 %
    assert abs(c.error - 0.45) < 1e-9 and c.train_d


def test_state_round_trip():
    c = controller()
    c.update(0.1, 1)
    d = controller()
    d.load_state_dict(c.state_dict())
    assert d.state_dict() == c.state_dict()
