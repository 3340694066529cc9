"""A refused form said in a plain sentence, next to the field it is about."""

from __future__ import annotations

from timebank.pages.i18n import gettext
from timebank.pages.views import N_

# The stable codes a member's form may meet, in words a person reads.
SENTENCES = {
    "insufficient_balance": N_("You do not have enough free hours for this."),
    "not_a_relative": N_(
        "Your community lets you give hours only to a relative registered with the community office. "
        "This person is not one of your relatives."
    ),
    "same_account": N_("You cannot give hours to yourself."),
    "amount_not_multiple_of_unit": N_(
        "Your community counts time in steps of %(unit)d minutes. Please change the amount."
    ),
    "amount_out_of_range": N_("This amount is too large or too small."),
    "balance_cap_exceeded": N_("The account receiving the hours cannot hold that many."),
    "not_eligible": N_("The rules of your community do not allow this for this member."),
    "invalid_transition": N_("This request has changed meanwhile, so nothing was done. Please look at it again."),
    "invalid_schedule": N_("Please choose a day and time that is still to come."),
    "unknown_service_type": N_("This service is not offered any more."),
    "capture_exceeds_hold": N_("That is more minutes than were set aside for this service."),
    "hold_not_pending": N_(
        "The hours set aside for this service are no longer held. Please ask your community office."
    ),
    "invalid_transfer_target": N_("This person cannot receive hours from you."),
    "cross_community_not_allowed": N_("This person cannot receive hours from you."),
    "not_a_volunteer": N_("Only a volunteer can do this."),
    "forbidden": N_("Your account may not do this."),
    "not_found": N_("This could not be found."),
    "idempotency_key_reused": N_("This form was already sent once. Please start again from the beginning."),
    # The pages' own checks of a form, before anything is sent.
    "no_minutes": N_("Please write the number of minutes, for example 60."),
    "no_hours": N_("Please write the number of hours, for example 2 or 1.5."),
    "no_day": N_("Please choose a day."),
    "no_time": N_("Please choose a time."),
    "no_member": N_("There is no member with this number in your community. Please check the number."),
    "no_recipient": N_("Please choose who gets the hours."),
    "no_rating": N_("Please choose how many stars, from 1 to 5."),
    "no_reason": N_("Please say in a few words why."),
    "no_service": N_("Please choose a service."),
}
FALLBACK = N_("This could not be done. Please ask your community office for help.")


def sentence(code: str, unit_minutes: int = 15) -> str:
    words = gettext(SENTENCES.get(code, FALLBACK))
    return words % {"unit": unit_minutes} if code == "amount_not_multiple_of_unit" else words
