"""Resource profiles: load ``spawner_config/profiles.yaml`` into named, validated records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from academy.validation import ConfigError, load_yaml, validate


@dataclass(frozen=True)
class GpuRequest:
    """GPUs a profile asks for: a card type or a MIG slice name, and a count."""

    type: str
    count: int
    mig: bool = False

    @property
    def gres(self) -> str:
        return f"gpu:{self.type}:{self.count}"


@dataclass(frozen=True)
class Profile:
    """One entry of the spawn form's profile picker."""

    slug: str
    display_name: str
    description: str
    cpus: int
    memory: str
    default_hours: int
    max_hours: int
    partition: str | None = None
    gpus: GpuRequest | None = None
    qos: str | None = None
    account: str | None = None
    reservation: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    idle_seconds: int | None = None

    def allows(self, user_groups: set[str] | frozenset[str], is_admin: bool = False) -> bool:
        """Is a user in ``user_groups`` allowed to use this profile? Empty ``groups`` is everyone."""
        return is_admin or not self.groups or bool(self.groups & set(user_groups))

    @property
    def gpu_summary(self) -> str:
        if not self.gpus:
            return "no GPU"
        kind = "MIG slice" if self.gpus.mig else "GPU"
        return f"{self.gpus.count} × {self.gpus.type} {kind}{'s' if self.gpus.count > 1 else ''}"


def profile_from_dict(raw: dict) -> Profile:
    gpus = raw.get("gpus")
    return Profile(
        slug=raw["slug"],
        display_name=raw["display_name"],
        description=" ".join(raw["description"].split()),
        cpus=raw["cpus"],
        memory=raw["memory"],
        default_hours=raw["hours"]["default"],
        max_hours=raw["hours"]["max"],
        partition=raw.get("partition"),
        gpus=GpuRequest(gpus["type"], gpus["count"], gpus.get("mig", False)) if gpus else None,
        qos=raw.get("qos"),
        account=raw.get("account"),
        reservation=raw.get("reservation"),
        groups=frozenset(raw.get("groups", [])),
        idle_seconds=raw.get("idle_seconds"),
    )


def parse_profiles(data: object, source: str) -> list[Profile]:
    """Validate parsed YAML and build profiles; checks the schema cannot express (unique slugs, default <= max)."""
    validate(data, "profiles", source)
    profiles = [profile_from_dict(p) for p in data["profiles"]]  # type: ignore[index]
    seen: set[str] = set()
    for i, p in enumerate(profiles):
        if p.slug in seen:
            raise ConfigError(f"{source}: profiles[{i}].slug: duplicate slug {p.slug!r}")
        seen.add(p.slug)
        if p.default_hours > p.max_hours:
            raise ConfigError(f"{source}: profiles[{i}].hours.default: {p.default_hours} exceeds hours.max {p.max_hours}")
    return profiles


def load_profiles(path: Path) -> list[Profile]:
    """Read and validate a profiles file."""
    return parse_profiles(load_yaml(path), str(path))
