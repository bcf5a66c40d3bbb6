"""The cluster boundary of a search: joining with the right token, and trials no node can take.

Used by the entry points (tune.py) and the Tuner; the messages live in address.py.
Two ways a search used to hang or end in a traceback at this boundary:

- Ray 2.60's ``ray start --head`` turns token authentication on. A driver without the cluster's
  token (or without ``RAY_AUTH_MODE=token``) makes ``ray.init`` retry for a minute and then raise
  a ``ConnectionError`` traceback; with token mode but no token at all, Ray aborts in C++.
  :func:`connect` asks the GCS once (Ray's own client, milliseconds) and names the fix.
- A trial asking for more than any node has (``--gpus-per-trial 1`` on CPU nodes) stays pending
  for ever while Tune prints "ignore this message if the cluster is autoscaling". On a private
  Ray nothing can be added: :func:`check_resources` ends at once, before anything is written. A
  cluster may grow, so :class:`PendingWatch` ends the search once no trial has run for
  ``--pending-timeout`` seconds while trials wait, saying what they ask for and what nodes exist.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.tune import Callback

from gan_core.errors import GansearchError
from search.raytune import address


def connect(target: address.Target, **kwargs: Any) -> None:
    """``ray.init`` for ``target``, after checking that the cluster takes this process's token."""
    if not target.local and "://" not in target.address:
        check_token(target)
    ray.init(address=target.init_address, **kwargs)


def check_token(target: address.Target) -> None:
    """One request to the cluster's GCS with the token ``ray.init`` would send; a GansearchError
    naming the fix if the cluster refuses it. Anything else is left for ``ray.init`` to report."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )
    from ray._raylet import (  # type: ignore[attr-defined]  # compiled; its stub lacks these
        AuthenticationMode,
        AuthenticationTokenLoader,
        GcsClient,
        get_authentication_mode,
    )
    from ray.exceptions import AuthenticationError

    if target.init_address in (None, "auto"):  # as ray.init does for a cluster it found itself
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    token_mode = get_authentication_mode() == AuthenticationMode.TOKEN
    has_token = AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True)
    if token_mode and not has_token:
        raise GansearchError(address.token_failure(target, token_mode=True, has_token=False))
    try:
        GcsClient(address=target.address)
    except AuthenticationError:
        raise GansearchError(address.token_failure(target, token_mode=token_mode, has_token=has_token)) from None
    except Exception:  # noqa: S110 - not about the token: ray.init says what it is
        pass


def _nodes() -> list[dict[str, float]]:
    return [{k: float(v) for k, v in n["Resources"].items() if k in ("CPU", "GPU")}
            for n in ray.nodes() if n["Alive"]]


def _request(cpus: float, gpus: float) -> dict[str, float]:
    return {"CPU": cpus, "GPU": gpus}


def check_resources(cpus: float, gpus: float, *, private: bool) -> None:
    """On a private Ray (nothing can be added), end at once if no node can hold one trial."""
    request, nodes = _request(cpus, gpus), _nodes()
    if private and not any(address.fits(request, n) for n in nodes):
        raise GansearchError(address.unplaceable(request, nodes, "this machine's private Ray", None))


class PendingWatch(Callback):
    """End a search whose trials wait for resources with none running for ``timeout`` seconds."""

    def __init__(self, cpus: float, gpus: float, timeout: float) -> None:
        self.request = _request(cpus, gpus)
        self.timeout = timeout
        self.where = f"the Ray cluster at {ray.get_runtime_context().gcs_address}"
        self.since: float | None = None
        self.noted = False

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        statuses = {t.status for t in trials}
        if "PENDING" not in statuses or "RUNNING" in statuses:
            self.since = None
            return
        now = time.monotonic()
        if self.since is None:
            self.since = now
            if not self.noted and not any(address.fits(self.request, n) for n in _nodes()):
                self.noted = True
                print(f"gansearch: no node of {self.where} can hold a trial yet; waiting up to "
                      f"{self.timeout:g} s for the autoscaler to add one (--pending-timeout)", flush=True)
        elif now - self.since > self.timeout:
            raise GansearchError(address.unplaceable(self.request, _nodes(), self.where, self.timeout))
