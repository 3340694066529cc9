"""The service's refusals as a coordinator reads them: a plain sentence per stable error code."""

from __future__ import annotations

from timebank.pages.i18n import gettext
from timebank.pages.views import N_

PROBLEMS = {
    "forbidden": N_("You may not do this for this member."),
    "not_found": N_("There is no such member or request in your community."),
    "member_exists": N_("A member with this phone or reference is already registered."),
    "relative_exists": N_("These two are already registered as relatives."),
    "already_reversed": N_("This entry was corrected already."),
    "cannot_reverse_reversal": N_("A correction cannot be corrected again."),
    "invalid_transition": N_("The request has moved on meanwhile: reload the list and look again."),
    "amount_not_multiple_of_unit": N_("The minutes must be a multiple of the community's unit (often 15)."),
    "amount_out_of_range": N_("The minutes are too many or too few for one entry."),
    "insufficient_balance": N_("There are not enough free hours for this."),
    "balance_cap_exceeded": N_("This would take the member's hours above the community's limit."),
    "not_a_volunteer": N_("This member is not a volunteer."),
    "not_a_member": N_("This is not a member of your community."),
    "duplicate_member": N_("This member is listed more than once."),
    "same_account": N_("A member cannot be their own relative or provider."),
    "cross_community_not_allowed": N_("Both members must belong to your community."),
    "capture_exceeds_hold": N_("More minutes than were set aside for this service."),
    "service_date_in_future": N_("The date of the service cannot be after today."),
    "not_eligible": N_("This member may not receive these hours."),
    "unknown_service_type": N_("There is no such service, or it is no longer offered."),
    "invalid_schedule": N_("The date and time of the service are not possible."),
    "too_many_attempts": N_("Too many wrong PINs: changes for this member are locked for a while."),
    "idempotency_key_reused": N_("This form was already used for something else. Please reload the page."),
    "conflict_retry": N_("The service was busy. Please send the form again."),
}
SOMETHING_WRONG = N_("Some of the boxes are not filled in right. Please look at them and send the form again.")


def problem_words(code: str) -> str:
    return gettext(PROBLEMS.get(code, SOMETHING_WRONG))
