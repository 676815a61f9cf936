"""Who sees which households, and how much of them: the privacy rules of the elderly-care work.

- The responders of a community (duty officer, property manager) see its households in full.
- A care worker sees only the households whose care worker she is, in full (she visits them).
- A family member sees only the households that list them as family, in full (their relative).
- A platform and an admin see the households of their communities masked: residents' and
  family's names and phones as in gateway.privacy (张*英, 138****5678), no note, no floor, and the
  unit as the household's pseudonym (`h-<12 hex>`), the same pseudonym as in alerts. Device ids
  stay (the devices API shows them to these roles too).

Who may change what: property managers and admins keep the register (create, edit, delete,
import); responders and care workers record visits (a care worker only to her households).
Every read of household data is audited by the routes (gateway.api.security.audit).
"""

from __future__ import annotations

from typing import TypedDict

from edge.enrich import Household
from gateway.privacy import RESPONDERS, Pseudonyms, mask_name, mask_phone
from gateway.tokens import Principal, Role

KEEPERS = frozenset({Role.PROPERTY_MANAGER, Role.ADMIN})  # may change the register
VISITORS = frozenset({Role.CARE_WORKER, Role.DUTY_OFFICER, Role.PROPERTY_MANAGER})


def sees_household(principal: Principal, household: Household) -> bool:
    """Whether the caller may read this household at all."""
    if not principal.may_see(household.community):
        return False
    if principal.role is Role.CARE_WORKER:
        worker = household.care_worker
        return (
            principal.person is not None
            and worker is not None
            and worker.person_id == principal.person
        )
    if principal.role is Role.FAMILY:
        return principal.person is not None and any(
            f.person_id == principal.person for f in household.family
        )
    return principal.role is not Role.EDGE_AGENT


def sees_in_full(principal: Principal, household: Household) -> bool:
    """Whether the caller reads this household's personal data unmasked."""
    if principal.role in (Role.CARE_WORKER, Role.FAMILY):
        return sees_household(principal, household)
    return principal.role in RESPONDERS and principal.may_see(household.community)


def may_keep(principal: Principal, community: str) -> bool:
    """Whether the caller may create, change or delete households of `community`."""
    return principal.role in KEEPERS and principal.may_see(community)


def may_visit(principal: Principal, household: Household) -> bool:
    """Whether the caller may record a visit to this household."""
    return principal.role in VISITORS and sees_household(principal, household)


class OwnHouseholds(TypedDict, total=False):
    """Keyword filters of `HouseholdStore.list` that narrow it to the caller's own households."""

    care_worker: str
    family_person: str


def list_filter(principal: Principal) -> OwnHouseholds:
    """The store filter that narrows a list to the caller's own households (care, family)."""
    # a token of these roles without a person (tokens.db edited by hand) matches nobody: "" is no id
    if principal.role is Role.CARE_WORKER:
        return {"care_worker": principal.person or ""}
    if principal.role is Role.FAMILY:
        return {"family_person": principal.person or ""}
    return {}


def masked_household(household: Household, places: Pseudonyms) -> Household:
    """The household as a platform or an admin sees it (see the module's docstring)."""
    return household.model_copy(
        update={
            "unit": places.unit(household.community, household.building, household.unit),
            "floor": None,
            "note": None,
            "residents": tuple(
                r.model_copy(
                    update={
                        "name": mask_name(r.name),
                        "phone": mask_phone(r.phone) if r.phone else None,
                    }
                )
                for r in household.residents
            ),
            "family": tuple(
                f.model_copy(
                    update={
                        "name": mask_name(f.name),
                        "phone": mask_phone(f.phone),
                        "person_id": None,
                    }
                )
                for f in household.family
            ),
            "care_worker": household.care_worker.model_copy(
                update={"phone": mask_phone(household.care_worker.phone)}
            )
            if household.care_worker and household.care_worker.phone
            else household.care_worker,
            "away_reason": None,
        }
    )


def shown(principal: Principal, household: Household, places: Pseudonyms) -> Household:
    """The household as this caller may see it (call `sees_household` first)."""
    if sees_in_full(principal, household):
        return household
    return masked_household(household, places)
