"""The audit trail and the report in words: each action, kind of actor and kind of record by name."""

from __future__ import annotations

from timebank.pages.i18n import gettext
from timebank.pages.views import N_, Text

# Every action the SQL operations record (sql/functions/*.sql, `_audit(...)`); an action not here is
# shown as its code.
ACTIONS = {
    "community.created": N_("Community created"),
    "policy.changed": N_("Community rules changed"),
    "member.created": N_("Member registered"),
    "member.changed": N_("Member details changed"),
    "member.pin_set": N_("PIN set"),
    "member.pin_failed": N_("Wrong PIN when changing it"),
    "member.signed_in": N_("Signed in"),
    "member.sign_in_failed": N_("Wrong PIN at sign-in"),
    "principal.signed_in": N_("Signed in with an access key"),
    "relative.added": N_("Relative added"),
    "relative.removed": N_("Relative removed"),
    "service_type.created": N_("Service type added"),
    "service_type.changed": N_("Service type changed"),
    "service_request.created": N_("Help asked for"),
    "service_request.assigned": N_("Volunteer assigned"),
    "service_request.checked_in": N_("Volunteer checked in"),
    "service_request.reported": N_("Service reported done"),
    "service_request.completed": N_("Service confirmed"),
    "service_request.disputed": N_("Service disputed"),
    "service_request.cancelled": N_("Request cancelled"),
    "service_request.withdrawn": N_("Volunteer withdrew"),
    "hold.placed": N_("Hours set aside"),
    "hold.captured": N_("Set-aside hours paid"),
    "hold.released": N_("Set-aside hours released"),
    "hold.expired": N_("Set-aside hours expired"),
    "transaction.created": N_("Hours moved"),
    "token.issued": N_("Access key issued"),
    "token.revoked": N_("Access key revoked"),
    "request.denied": N_("Request refused"),
    "write.rejected": N_("Change refused"),
}
# Who acted, when it was not a member: the kinds of principal and the service itself.
KINDS = {
    "admin": N_("administrator"),
    "auditor": N_("auditor"),
    "system": N_("the system"),
    "anonymous": N_("someone not signed in"),
}
SUBJECT_TYPES = {
    "member": N_("member"),
    "community": N_("community"),
    "principal": N_("account"),
    "token": N_("access key"),
    "transaction": N_("transaction"),
    "hold": N_("set-aside hours"),
    "service_request": N_("request for help"),
    "service_type": N_("service type"),
    "relative": N_("relative"),
}


def actor_text(actor_name: str) -> Text:
    """A member's name as it is now, or the kind of actor in words (audit.service names them so)."""
    if actor_name in KINDS:
        return Text(gettext(KINDS[actor_name]))
    return Text(actor_name, data=True)


def grid_label(grid: str | None) -> str:
    """A grid's name in words: "网格 3", or the members without a grid."""
    if grid is None:
        return gettext("No grid")
    return gettext("Grid %(name)s") % {"name": grid}
