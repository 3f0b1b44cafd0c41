"""Qualification requirements: checked when a HIT is created, enforced when a worker acts.

A requirement guards one action ("Accept", "PreviewAndAccept" or "DiscoverPreviewAndAccept")
and compares the worker's value of one qualification type: an integer for most types, a
locale (country, optional subdivision) for Worker_Locale. Every comparator except
DoesNotExist fails for a worker who lacks the qualification, as on MTurk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from crowdkit.localturk.errors import ParameterValidationError, RequestError

# MTurk's system qualification types, as the MTurk API reference lists them. The twin keeps
# its own copy (a fake must not depend on the client it fakes); a test checks that the
# requester side (crowdkit.platforms.mturk.quals) uses the same ids.
LOCALE = "00000000000000000071"
NUMBER_HITS_APPROVED = "00000000000000000040"
PERCENT_ASSIGNMENTS_APPROVED = "000000000000000000L0"
ADULT = "00000000000000000060"
MASTERS_SANDBOX = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
MASTERS_PRODUCTION = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS = (MASTERS_SANDBOX, MASTERS_PRODUCTION)

SYSTEM_TYPES: dict[str, tuple[str, str]] = {
    LOCALE: ("Worker_Locale", "The worker's country (and subdivision), from their profile."),
    NUMBER_HITS_APPROVED: ("Worker_NumberHITsApproved",
                           "How many of the worker's assignments have been approved."),
    PERCENT_ASSIGNMENTS_APPROVED: ("Worker_PercentAssignmentsApproved",
                                   "The share of the worker's submitted assignments approved."),
    ADULT: ("Worker_Adult", "The worker agreed to see adult content (1)."),
    MASTERS_SANDBOX: ("Masters (sandbox)", "MTurk's Masters qualification, sandbox id."),
    MASTERS_PRODUCTION: ("Masters", "MTurk's Masters qualification, production id."),
}

INTEGER_COMPARATORS = {
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "EqualTo": lambda a, b: a == b,
    "NotEqualTo": lambda a, b: a != b,
}
SET_COMPARATORS = ("In", "NotIn")
PRESENCE_COMPARATORS = ("Exists", "DoesNotExist")
GUARDS = ("Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Locale:
    country: str
    subdivision: str | None = None

    def matches(self, wanted: dict) -> bool:
        """A requirement naming only a country matches every subdivision of it."""
        if self.country != wanted["Country"]:
            return False
        return wanted.get("Subdivision") in (None, self.subdivision)

    def label(self) -> str:
        return self.country + (f"-{self.subdivision}" if self.subdivision else "")


def _bad(message: str) -> ParameterValidationError:
    """A malformed requirement: MTurk's parameter validation refuses it."""
    return ParameterValidationError(message,
                                    "AWS.MechanicalTurk.InvalidQualificationRequirement")


def validate_requirements(
    requirements: list[dict], known_type: Callable[[str], bool]
) -> list[dict]:
    """Check requirements as CreateHIT does and return them in a canonical form."""
    if len(requirements) > 10:
        raise _bad("A HIT can have at most 10 QualificationRequirements.")
    return [_validate_one(req, known_type) for req in requirements]


def _validate_one(req: dict, known_type: Callable[[str], bool]) -> dict:
    type_id = req.get("QualificationTypeId")
    comparator = req.get("Comparator")
    if not type_id:
        raise _bad("A QualificationRequirement needs a QualificationTypeId.")
    if not known_type(type_id):  # an entity that is not there, not a malformed parameter
        raise RequestError(f"QualificationType {type_id} does not exist.",
                           "AWS.MechanicalTurk.QualificationTypeDoesNotExist")
    integers = req.get("IntegerValues") or []
    locales = req.get("LocaleValues") or []
    valid = (*INTEGER_COMPARATORS, *SET_COMPARATORS, *PRESENCE_COMPARATORS)
    if comparator not in valid:
        raise _bad(f"Comparator {comparator!r} is not one of {', '.join(valid)}.")
    if comparator in PRESENCE_COMPARATORS:
        if integers or locales:
            raise _bad(f"The comparator {comparator} takes no IntegerValues or LocaleValues.")
    elif type_id == LOCALE:
        _check_locale_values(comparator, integers, locales)
    else:
        _check_integer_values(type_id, comparator, integers, locales)
    guard = req.get("ActionsGuarded")
    if guard is None:
        guard = "PreviewAndAccept" if req.get("RequiredToPreview") else "Accept"
    if guard not in GUARDS:
        raise _bad(f"ActionsGuarded {guard!r} is not one of {', '.join(GUARDS)}.")
    out = {"QualificationTypeId": type_id, "Comparator": comparator, "ActionsGuarded": guard}
    if integers:
        out["IntegerValues"] = [int(v) for v in integers]
    if locales:
        out["LocaleValues"] = [
            {k: v for k, v in loc.items() if k in ("Country", "Subdivision")} for loc in locales
        ]
    if "RequiredToPreview" in req:
        out["RequiredToPreview"] = bool(req["RequiredToPreview"])
    return out


def _check_locale_values(comparator: str, integers: list, locales: list) -> None:
    if integers:
        raise _bad("IntegerValues cannot be used with the Worker_Locale qualification.")
    if comparator not in ("EqualTo", "NotEqualTo", *SET_COMPARATORS):
        raise _bad(f"LocaleValues cannot be used with the comparator {comparator}.")
    _check_count(comparator, locales, "LocaleValue", 30)
    for loc in locales:
        if not _COUNTRY.match(str(loc.get("Country", ""))):
            raise _bad(f"Country {loc.get('Country')!r} is not an ISO 3166 two-letter code.")


def _check_integer_values(type_id: str, comparator: str, integers: list, locales: list) -> None:
    if locales:
        raise _bad(f"LocaleValues can only be used with Worker_Locale ({LOCALE}), not {type_id}.")
    _check_count(comparator, integers, "IntegerValue", 15)


def _check_count(comparator: str, values: list, member: str, most: int) -> None:
    """In and NotIn take a list of 1 to `most` values; the other comparators exactly one."""
    if comparator in SET_COMPARATORS:
        if not 1 <= len(values) <= most:
            raise _bad(f"{comparator} takes between 1 and {most} {member}s.")
    elif len(values) != 1:
        raise _bad(f"{comparator} takes exactly one {member}.")


def meets(requirement: dict, value: int | Locale | None) -> bool:
    """Whether a worker holding `value` (None: lacks it) satisfies the requirement."""
    comparator = requirement["Comparator"]
    if comparator == "DoesNotExist":
        return value is None
    if value is None:
        return False
    if comparator == "Exists":
        return True
    if isinstance(value, Locale):
        wanted = requirement.get("LocaleValues", [])
        hit = any(value.matches(loc) for loc in wanted)
        return hit if comparator in ("EqualTo", "In") else not hit
    integers = requirement.get("IntegerValues", [])
    if comparator == "In":
        return value in integers
    if comparator == "NotIn":
        return value not in integers
    return INTEGER_COMPARATORS[comparator](value, integers[0])


def describe(requirement: dict) -> str:
    """A short human line for the worker site, e.g. 'Worker_Locale In US, CA'."""
    type_id = requirement["QualificationTypeId"]
    name = SYSTEM_TYPES.get(type_id, (type_id, ""))[0]
    values = [Locale(loc["Country"], loc.get("Subdivision")).label()
              for loc in requirement.get("LocaleValues", [])]
    values += [str(v) for v in requirement.get("IntegerValues", [])]
    return " ".join([name, requirement["Comparator"], ", ".join(values)]).strip()


def requires_masters(requirements: list[dict]) -> bool:
    return any(r["QualificationTypeId"] in MASTERS and r["Comparator"] != "DoesNotExist"
               for r in requirements)
