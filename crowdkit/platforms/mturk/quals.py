"""MTurk qualifications: the requirements a study's HITs carry, and its own qualification types.

Every participant of a study is granted the study's qualification (`crowdkit:<name>`); its
HITs require that qualification *not* to exist, so nobody takes part twice. Other studies
listed in `[qualifications] exclude_studies` are refused the same way, and an expert
qualification, if named, marks invited experts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.mturk.client import calling, error_message, paginate
from crowdkit.study import StudyConfig

# MTurk's system qualification types.
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
MASTERS = {
    "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
    "sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
    "local": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",  # the local twin knows the sandbox id
}
QUALIFICATION_PREFIX = "crowdkit:"


def study_qualification_name(study_name: str) -> str:
    """The qualification every participant of a study is granted (found by exact name)."""
    return QUALIFICATION_PREFIX + study_name


def locale_value(text: str) -> dict[str, str]:
    """"US" or "US-NY" as MTurk's LocaleValue; anything else is a ConfigError."""
    country, _, subdivision = text.strip().upper().partition("-")
    if len(country) != 2 or not country.isalpha() or (subdivision and (
            len(subdivision) != 2 or not subdivision.isalnum())):
        raise ConfigError(f'[qualifications] locales: {text!r} is not a locale such as "US" '
                          'or "US-NY" (ISO 3166 country, optional subdivision)')
    value = {"Country": country}
    if subdivision:
        value["Subdivision"] = subdivision
    return value


def qualification_requirements(config: StudyConfig, target: str, study_qualification: str,
                               excluded: list[str]) -> list[dict[str, Any]]:
    """MTurk QualificationRequirements from [qualifications] and the study's own types."""
    q = config.qualifications
    guarded = {"ActionsGuarded": "DiscoverPreviewAndAccept"}
    reqs: list[dict[str, Any]] = []
    if q.min_approval_rate is not None:
        reqs.append({"QualificationTypeId": PERCENT_APPROVED,
                     "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [q.min_approval_rate], **guarded})
    if q.min_approved_hits is not None:
        reqs.append({"QualificationTypeId": NUMBER_APPROVED,
                     "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [q.min_approved_hits], **guarded})
    if q.locales:
        locales = [locale_value(loc) for loc in q.locales]
        comparator = "EqualTo" if len(locales) == 1 else "In"
        reqs.append({"QualificationTypeId": LOCALE, "Comparator": comparator,
                     "LocaleValues": locales, **guarded})
    if q.masters:
        reqs.append({"QualificationTypeId": MASTERS[target], "Comparator": "Exists",
                     **guarded})
    for type_id in [study_qualification, *excluded]:
        reqs.append({"QualificationTypeId": type_id, "Comparator": "DoesNotExist", **guarded})
    return reqs


def find_qualification_type(client: Any, name: str) -> str | None:
    """The id of the caller's qualification type named exactly `name`, if any."""
    for qt in paginate(client.list_qualification_types, "QualificationTypes",
                       Query=name, MustBeRequestable=False, MustBeOwnedByCaller=True):
        if qt.get("Name") == name and qt.get("QualificationTypeStatus", "Active") == "Active":
            return str(qt["QualificationTypeId"])
    return None


def ensure_qualification_type(client: Any, name: str, description: str) -> str:
    """Find the qualification type by exact name, or create it; safe to repeat."""
    with calling(f"finding the qualification type {name!r}"):
        found = find_qualification_type(client, name)
    if found:
        return found
    try:
        response = client.create_qualification_type(
            Name=name, Description=description, QualificationTypeStatus="Active",
            Keywords="crowdkit",
        )
        return str(response["QualificationType"]["QualificationTypeId"])
    except Exception as exc:
        # Created by a run that died before recording it, or by a concurrent run.
        with calling(f"finding the qualification type {name!r}"):
            found = find_qualification_type(client, name)
        if found:
            return found
        raise CrowdkitError(
            f"could not create the qualification type {name!r}: {error_message(exc)}"
        ) from exc


@dataclass(frozen=True)
class StudyQualifications:
    """The qualification types the HITs require DoesNotExist (this study's, excluded ones')."""

    study: str
    excluded: list[str]


def ensure_qualifications(client: Any, ledger: Ledger, config: StudyConfig, target: str
                          ) -> StudyQualifications:
    """Find or create this study's, the excluded studies' and the expert qualification types.

    Each id is looked up in the ledger first, then by exact name in the account, and created
    only when missing, so repeating publish (or crashing half-way) never makes a second one.
    """
    q = config.qualifications
    name = config.study.name

    def ensure(type_name: str, role: str, description: str) -> str:
        known = ledger.qualification_type_id(target, type_name)
        if known:
            return known
        type_id = ensure_qualification_type(client, type_name, description)
        ledger.record_qualification_type(target, type_name, role, type_id)
        ledger.log_event("qualification_type.ensured", target=target, name=type_name,
                         role=role, qualification_type_id=type_id)
        return type_id

    own = ensure(study_qualification_name(name), "study",
                 f"Took part in the crowdkit study {name}; each person takes part once.")
    excluded = [
        ensure(study_qualification_name(other), "excluded",
               f"Took part in the crowdkit study {other}; each person takes part once.")
        for other in q.exclude_studies if other != name
    ]
    if q.expert_qualification:  # recorded for collect, which classifies its holders
        ensure(q.expert_qualification, "expert",
               "Invited expert participant in crowdkit studies.")
    return StudyQualifications(own, excluded)
