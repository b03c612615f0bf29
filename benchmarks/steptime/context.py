"""One benchmark run's set-up, and the variants it runs through act in every round."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from steptime.anchor import Anchor
from steptime.model import (
    HEALTHY,
    OFF,
    ORIGINAL_OFF,
    SLOW_TBOT_SECONDS,
    Mode,
    Pythons,
    Variant,
    Workspace,
    cases_of,
    reference_mode,
)


@dataclass
class Context:
    python: str
    python_version: str
    work: Path
    bin_dir: Path
    pythons: Pythons
    runs: int
    modes: tuple[Mode, ...]
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    healthy_kind: str = ""
    anchor: Anchor | None = None
    dropped: dict[str, str] = field(default_factory=dict)  # host-only variables removed

    @property
    def reference(self) -> Mode:
        return reference_mode(self.modes)

    def variants(self) -> list[Variant]:
        """Every kind of act run, in the order of a round.

        The original runs next to this project's opted-out run in the reference
        mode; the 1 s-tbot pair (off, on) closes the round.
        """
        ref = self.reference
        found: list[Variant] = []
        for mode in self.modes:
            ws = self.workspaces[mode.key].path
            for case in cases_of(mode):
                found.append(Variant(f"{mode.key}/{case.key}", case.label, mode, case, ws))
                if self.anchor is not None and mode == ref and case == OFF:
                    found.append(
                        Variant(
                            "original/off",
                            ORIGINAL_OFF.label,
                            ref,
                            ORIGINAL_OFF,
                            self.anchor.workspace,
                            original=True,
                        )
                    )
        ws = self.workspaces[ref.key].path
        for case in (OFF, HEALTHY):
            label = f"{case.label}, tbot {SLOW_TBOT_SECONDS:g} s"
            found.append(
                Variant(f"slow/{case.key}", label, ref, case, ws, tbot_sleep=SLOW_TBOT_SECONDS)
            )
        return found
