"""Fault injection for reliability tests: throttling, 5xx faults, lost answers, latency.

Faults apply to the requester API only (the worker site stays reliable). One random draw
per request decides its fate, so the rates are exclusive and must add up to at most 1.
A "lost response" performs the operation and then answers with a ServiceFault, the case
that idempotency tokens exist for.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from crowdkit.localturk.errors import ServiceFault, ThrottlingException


@dataclass(frozen=True)
class FaultConfig:
    """How unreliable the requester API should be. The default is perfectly reliable."""

    throttle_rate: float = 0.0
    fault_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency_s: float = 0.0
    seed: int | None = None
    operations: frozenset[str] | None = None  # None: every operation

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "fault_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.throttle_rate + self.fault_rate + self.lost_response_rate > 1.0:
            raise ValueError("throttle_rate + fault_rate + lost_response_rate must be at most 1")
        if self.latency_s < 0:
            raise ValueError(f"latency_s must not be negative, got {self.latency_s}")
        if self.operations is not None:
            object.__setattr__(self, "operations", frozenset(self.operations))

    @property
    def active(self) -> bool:
        return bool(self.throttle_rate or self.fault_rate or self.lost_response_rate
                    or self.latency_s)


class FaultInjector:
    """Decides, per request, whether to delay it, refuse it, or lose its answer."""

    def __init__(self, config: FaultConfig | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)

    def before(self, operation: str) -> bool:
        """Delay and maybe refuse the call; True means: run it, then lose the answer."""
        config = self.config
        if not config.active or (config.operations is not None
                                 and operation not in config.operations):
            return False
        if config.latency_s:
            self.sleep(config.latency_s)
        with self._lock:
            draw = self._random.random()
        if draw < config.throttle_rate:
            raise ThrottlingException()
        if draw < config.throttle_rate + config.fault_rate:
            raise ServiceFault()
        return draw < config.throttle_rate + config.fault_rate + config.lost_response_rate

    @staticmethod
    def lost_response() -> ServiceFault:
        return ServiceFault("The request timed out before its answer could be sent. "
                            "(localturk fault injection: the operation did take effect)")
