"""The member pages' handlers: asking for help, one's requests, volunteering, giving hours."""

from __future__ import annotations

from timebank.pages import ask, gift, my_requests, volunteer

MEMBER_HANDLERS = [
    ask.ask_page, ask.ask,
    my_requests.my_requests, my_requests.my_request, my_requests.confirm, my_requests.dispute, my_requests.cancel,
    volunteer.open_requests, volunteer.claim, volunteer.tasks, volunteer.check_in, volunteer.report, volunteer.withdraw,
    gift.gift_page, gift.gift,
]  # fmt: skip
